// Package allowlist holds the sender prefixes a listener accepts (the
// allow= option of host-event and flow listeners): anyone who reaches a
// listening port could otherwise send records.
package allowlist

import (
	"fmt"
	"net/netip"
	"strings"
)

// List is prefixes; an empty List allows every sender.
type List []netip.Prefix

// Parse reads prefixes (10.0.0.0/8) or single addresses, separated by
// commas.
func Parse(s string) (List, error) {
	var ps List
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, fmt.Errorf("option allow %q: an empty entry; give prefixes separated by commas", s)
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("option allow: %q: a prefix has no zone", f)
			}
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("option allow: %q is neither an address nor a prefix such as 10.0.0.0/8", f)
		}
		ps = append(ps, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return ps, nil
}

// Allows says whether a sender is in the list (always, when it is empty).
// An IPv4 sender on a dual-stack socket arrives as ::ffff:a.b.c.d and is
// matched as a.b.c.d.
func (l List) Allows(a netip.Addr) bool {
	if len(l) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range l {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
