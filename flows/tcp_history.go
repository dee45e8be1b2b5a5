package flows

// History letters; the bit index is the letter's position here.
const histLetters = "SHADFRCGTWIQ"

// letterBit is the bit of Endpoint.seen that history letter c sets.
func letterBit(c byte) uint16 {
	for i := 0; i < len(histLetters); i++ {
		if histLetters[i] == c {
			return 1 << i
		}
	}
	return 0
}

// letter logs c (upper case) once per direction, lower case for the responder.
func (r *Record) letter(e *Endpoint, isOrig bool, c byte) {
	b := letterBit(c)
	if e.seen&b != 0 {
		return
	}
	e.seen |= b
	r.addHistory(caseFor(c, isOrig))
}

// scaledLetter logs c at the 1st, 10th and 100th occurrence, as Zeek does for
// retransmissions, zero windows and gaps, so their rate shows in the history.
func (r *Record) scaledLetter(count *uint8, isOrig bool, c byte) {
	if *count < 0xff {
		*count++
	}
	switch *count {
	case 1, 10, 100:
		r.addHistory(caseFor(c, isOrig))
	}
}

func caseFor(c byte, isOrig bool) byte {
	if isOrig {
		return c
	}
	return c + ('a' - 'A')
}
