package encode

import (
	"strconv"
	"strings"
)

// imageName is a program's file name without its directory, as the feed
// wrote it (ECS's process.name keeps the case).
func imageName(image string) string {
	if i := strings.LastIndexAny(image, `\/`); i >= 0 {
		return image[i+1:]
	}
	return image
}

// hostOnly is a name without the port an HTTP Host may carry:
// "example.com:8080" and "[2001:db8::1]:80" lose it, a bare IPv6 address
// keeps its colons.
func hostOnly(s string) string {
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			return s[1:i]
		}
		return s
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		return s[:i]
	}
	return s
}

// ianaKeyword is the IANA protocol keyword ECS's network.transport takes,
// lower case; "" for the protocols not named here (iana_number still
// says which).
func ianaKeyword(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 41:
		return "ipv6"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 58:
		return "ipv6-icmp"
	case 132:
		return "sctp"
	}
	return ""
}

// tlsVersion splits a negotiated version into ECS's tls.version and
// tls.version_protocol ("1.3", "tls"); "" for versions ECS cannot name.
func tlsVersion(v uint16) (version, protocol string) {
	switch v {
	case 0x0300:
		return "3.0", "ssl"
	case 0x0301:
		return "1.0", "tls"
	case 0x0302:
		return "1.1", "tls"
	case 0x0303:
		return "1.2", "tls"
	case 0x0304:
		return "1.3", "tls"
	}
	return "", ""
}

func appendQUICVersion(dst []byte, v uint32) []byte {
	switch v {
	case 1:
		return append(dst, '1')
	case 0x6b3343cf:
		return append(dst, '2')
	}
	dst = append(dst, "0x"...)
	return strconv.AppendUint(dst, uint64(v), 16)
}

// DNS names of the common query types and response codes (RFC 1035 and
// the IANA registry); others are written as RFC 3597's TYPEnnn, and a
// response code as its number.
var dnsTypes = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
	64: "SVCB", 65: "HTTPS", 99: "SPF", 255: "ANY", 257: "CAA"}

var dnsRCodes = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}

func appendDNSType(dst []byte, t uint16) []byte {
	dst = append(dst, '"')
	if n, ok := dnsTypes[t]; ok {
		dst = append(dst, n...)
	} else {
		dst = append(dst, "TYPE"...)
		dst = strconv.AppendUint(dst, uint64(t), 10)
	}
	return append(dst, '"')
}

func appendDNSRCode(dst []byte, c uint8) []byte {
	dst = append(dst, '"')
	if int(c) < len(dnsRCodes) {
		dst = append(dst, dnsRCodes[c]...)
	} else {
		dst = strconv.AppendUint(dst, uint64(c), 10)
	}
	return append(dst, '"')
}
