package encode

import (
	"strconv"
	"time"
)

// appendTimestamp appends ns (Unix nanoseconds) as RFC 3339 in UTC with nine
// fractional digits. time.AppendFormat took 40% of encoding a record; this is
// the same text from integer arithmetic (days to civil date as in Howard
// Hinnant's chrono algorithms), checked against the time package in tests.
func appendTimestamp(dst []byte, ns int64) []byte {
	secs, frac := ns/1e9, ns%1e9
	if frac < 0 {
		frac += 1e9
		secs--
	}
	days, rem := secs/86400, secs%86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		return time.Unix(0, ns).UTC().AppendFormat(dst, tsLayout)
	}
	dst = appendDigits(dst, uint64(y), 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, uint64(m), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, uint64(d), 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, uint64(rem/3600), 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, uint64(rem%3600/60), 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, uint64(rem%60), 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, uint64(frac), 9)
	return append(dst, 'Z')
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendDigits appends v zero-padded to n digits, two digits per division.
func appendDigits(dst []byte, v uint64, n int) []byte {
	var b [20]byte
	i := n
	for i >= 2 {
		q := v % 100
		v /= 100
		i -= 2
		b[i], b[i+1] = digitPairs[2*q], digitPairs[2*q+1]
	}
	if i == 1 {
		b[0] = byte('0' + v%10)
	}
	return append(dst, b[:n]...)
}

// appendSeconds appends a non-negative nanosecond duration as seconds with
// nine decimals, without going through a float.
func appendSeconds(dst []byte, ns int64) []byte {
	if ns < 0 {
		dst = append(dst, '-')
		ns = -ns
	}
	dst = strconv.AppendUint(dst, uint64(ns/1e9), 10)
	dst = append(dst, '.')
	return appendDigits(dst, uint64(ns%1e9), 9)
}
