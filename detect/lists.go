package detect

import (
	"embed"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strings"
)

//go:embed lists/*.tsv
var listFiles embed.FS

// lists are the shipped name lists, with what the config adds.
type lists struct {
	services   map[string]string // domain -> category: the domain and its subdomains
	subOnly    map[string]string // domain -> category: its subdomains only (".example.com" in a list)
	dyndns     map[string]bool   // suffixes, with their leading dot
	dohNames   map[string]string
	dohAddrs   map[netip.Addr]string
	tools      map[string]tool // lower-case base name
	office     map[string]bool
	unixLOLBin map[string]bool
}

type tool struct {
	platform string
	caps     []string
}

func (t tool) can(c string) bool {
	for _, x := range t.caps {
		if x == c || strings.HasPrefix(x, c+"(") {
			return true
		}
	}
	return false
}

func readList(name string) [][]string {
	b, _ := listFiles.ReadFile("lists/" + name)
	var rows [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		rows = append(rows, strings.Split(l, "\t"))
	}
	return rows
}

var defaultOffice = []string{"winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "onenote.exe", "mspub.exe", "msaccess.exe", "visio.exe"}

func buildLists(file string, lc *ListsConfig) (*lists, []error) {
	l := &lists{services: map[string]string{}, subOnly: map[string]string{}, dohNames: map[string]string{}, dohAddrs: map[netip.Addr]string{},
		tools: map[string]tool{}, office: map[string]bool{}, unixLOLBin: map[string]bool{}, dyndns: map[string]bool{}}
	var errs []error
	addDoH := func(h, name string) {
		if a, err := netip.ParseAddr(h); err == nil {
			l.dohAddrs[a.Unmap()] = name
		} else {
			l.dohNames[strings.ToLower(h)] = name
		}
	}
	if !lc.Replace {
		for _, r := range readList("services.tsv") {
			l.addService(r[0], r[1])
		}
		for _, r := range readList("dynamic-dns.tsv") {
			l.dyndns[dotted(r[0])] = true
		}
		for _, r := range readList("doh.tsv") {
			addDoH(r[0], r[1])
		}
		for _, r := range readList("tools.tsv") {
			l.tools[strings.ToLower(r[0])] = tool{platform: r[1], caps: strings.Split(r[2], ",")}
			if r[1] == "unix" {
				l.unixLOLBin[strings.ToLower(r[0])] = true
			}
		}
		for _, o := range defaultOffice {
			l.office[o] = true
		}
	}
	for i, s := range lc.Services {
		f := strings.Fields(s)
		if len(f) != 2 {
			errs = append(errs, &ConfigError{File: file, Key: fmt.Sprintf("Lists.Services[%d]", i), Msg: fmt.Sprintf("%q: want \"domain category\"", s)})
			continue
		}
		l.addService(f[0], f[1])
	}
	for _, s := range lc.DynamicDNS {
		l.dyndns[dotted(s)] = true
	}
	for _, s := range lc.DoH {
		addDoH(s, "config")
	}
	for i, s := range lc.Tools {
		f := strings.Fields(s)
		if len(f) < 2 {
			errs = append(errs, &ConfigError{File: file, Key: fmt.Sprintf("Lists.Tools[%d]", i), Msg: fmt.Sprintf("%q: want \"name platform [capability,...]\"", s)})
			continue
		}
		t := tool{platform: f[1]}
		if len(f) > 2 {
			t.caps = strings.Split(f[2], ",")
		}
		l.tools[strings.ToLower(f[0])] = t
	}
	for _, s := range lc.OfficeApps {
		l.office[strings.ToLower(s)] = true
	}
	for _, s := range lc.UnixLOLBins {
		l.unixLOLBin[strings.ToLower(s)] = true
	}
	return l, errs
}

// tool returns the tools-list entry of a program, by its base name, or
// without a version suffix ("python3.11" is "python3", then "python").
func (l *lists) tool(image string) (tool, bool) { return byName(l.tools, image) }

// byName looks a program up by its base name, lower case, then by the
// name without a version suffix.
func byName[T any](m map[string]T, image string) (T, bool) {
	b := baseName(image)
	if v, ok := m[b]; ok {
		return v, true
	}
	v, ok := m[strings.TrimRight(b, "0123456789.")]
	return v, ok
}

func (l *lists) addService(domain, category string) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if strings.HasPrefix(domain, ".") {
		l.subOnly[domain[1:]] = category
	} else {
		l.services[domain] = category
	}
}

// service returns the category and the list entry of the web service a
// server name (lower case) belongs to: the longest entry it is, or lies
// under.
func (l *lists) service(name string) (category, domain string) {
	name = hostOnly(name)
	for n, sub := name, false; n != ""; sub = true {
		if c, ok := l.services[n]; ok {
			return c, n
		}
		if c, ok := l.subOnly[n]; ok && sub {
			return c, "." + n
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return "", ""
}

func (l *lists) isCategory(s string) bool {
	for _, c := range l.services {
		if c == s {
			return true
		}
	}
	for _, c := range l.subOnly {
		if c == s {
			return true
		}
	}
	return false
}

func (l *lists) categories() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{l.services, l.subOnly} {
		for _, c := range m {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// matches reports whether a server name (lower case) is one of the
// services named in want, categories or domains (suffix match), given
// the service it belongs to (l.service).
func matches(lname, cat, dom string, want []string) (category, domain string, ok bool) {
	if lname == "" {
		return "", "", false
	}
	for _, w := range want {
		if cat != "" && w == cat {
			return cat, dom, true
		}
		if strings.Contains(w, ".") && underDomain(lname, strings.ToLower(w)) {
			return cat, w, true
		}
	}
	return cat, dom, false
}

func dotted(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasPrefix(s, ".") {
		s = "." + s
	}
	return s
}

// underDomain reports whether a name (lower case) is the domain an
// entry names or lies under it; an entry with a leading dot ("
// .example.com") names subdomains only.
func underDomain(name, entry string) bool {
	d := strings.TrimPrefix(entry, ".")
	if name == d {
		return d == entry
	}
	return len(name) > len(d) && strings.HasSuffix(name, d) && name[len(name)-len(d)-1] == '.'
}

// hostOnly is a server name as the analytics compare it: without the port
// a Host header may carry ("example.com:8080", "[2001:db8::1]:443") and
// without a trailing dot.
func hostOnly(h string) string {
	if h != "" && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i > 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	return strings.TrimSuffix(h, ".")
}

// dynamicDNS returns the dynamic-DNS suffix a name (lower case) lies
// under, by its dot-suffixes: one map lookup per label.
func (l *lists) dynamicDNS(name string) string {
	name = hostOnly(name)
	for i := strings.IndexByte(name, '.'); i >= 0; {
		if s := name[i:]; l.dyndns[s] {
			return s
		}
		j := strings.IndexByte(name[i+1:], '.')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return ""
}

// doh names the public DoH resolver at an address or server name (lower
// case).
func (l *lists) doh(a netip.Addr, name string) string {
	if r, ok := l.dohAddrs[a.Unmap()]; ok {
		return r
	}
	return l.dohNames[name]
}

// baseName is a program's file name, lower-cased, from a Windows or a
// POSIX path.
func baseName(image string) string {
	if i := strings.LastIndexAny(image, `\/`); i >= 0 {
		image = image[i+1:]
	}
	return strings.ToLower(image)
}

// nameIn reports whether a program's base name is in list, compared
// case-insensitively; "python" also covers "python3.11".
func nameIn(image string, list []string) bool {
	b := baseName(image)
	for _, n := range list {
		n = strings.ToLower(n)
		if b == n {
			return true
		}
		if strings.HasPrefix(b, n) && strings.Trim(b[len(n):], "0123456789.") == "" {
			return true
		}
		if strings.ContainsAny(n, "*?[") {
			if ok, _ := path.Match(n, b); ok {
				return true
			}
		}
	}
	return false
}
