// Package yamlcfg reads YAML config files strictly and with line numbers:
// a key that names nothing is reported with the keys that would, each bad
// value with its key and line, and every problem of a file in one pass.
package yamlcfg

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem with a config file, at a key and line.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

func errLine(err error) int {
	if ce, ok := err.(*Error); ok && ce.Line > 0 {
		return ce.Line
	}
	return 1 << 30
}

// KeyLines notes the line of every key and list item, by its dotted path
// ("PeerGroups.lab[1]").
func KeyLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := Join(path, n.Content[i].Value)
			lines[k] = n.Content[i].Line
			KeyLines(n.Content[i+1], k, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			k := fmt.Sprintf("%s[%d]", path, i)
			lines[k] = item.Line
			KeyLines(item, k, lines)
		}
	}
}

// LineOf finds the line of a key, or of the nearest key above it that the
// file has (a problem found in a default has none).
func LineOf(lines map[string]int, key string) int {
	for k := key; k != ""; {
		if l, ok := lines[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// checkKeys reports keys that name nothing, with the keys that would.
func checkKeys(file string, n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode {
		return
	}
	known := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && f.IsExported() {
			known[tag] = f.Type
			names = append(names, tag)
		}
	}
	sort.Strings(names)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := known[k.Value]
		if !ok {
			*errs = append(*errs, &Error{File: file, Line: k.Line, Key: Join(path, k.Value),
				Msg: "unknown key; known here: " + strings.Join(names, ", ")})
			continue
		}
		checkKeys(file, n.Content[i+1], ft, Join(path, k.Value), errs)
	}
}

// decodeFields decodes each known key on its own, so that one bad value
// is reported with its key and the others still read.
func decodeFields(file string, n *yaml.Node, v reflect.Value, path string, errs *[]error) {
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{File: file, Line: n.Line, Key: orRoot(path), Msg: "want a mapping of keys"})
		return
	}
	t := v.Type()
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		for j := 0; j < t.NumField(); j++ {
			f := t.Field(j)
			if strings.Split(f.Tag.Get("yaml"), ",")[0] != k.Value || !f.IsExported() {
				continue
			}
			fv := v.Field(j)
			if f.Type.Kind() == reflect.Struct && val.Kind == yaml.MappingNode {
				decodeFields(file, val, fv, Join(path, k.Value), errs)
				break
			}
			if err := val.Decode(fv.Addr().Interface()); err != nil {
				msg := err.Error()
				if te := (*yaml.TypeError)(nil); errors.As(err, &te) && len(te.Errors) > 0 {
					msg = strings.Join(te.Errors, "; ")
				}
				*errs = append(*errs, &Error{File: file, Line: val.Line, Key: Join(path, k.Value), Msg: msg})
			}
			break
		}
	}
}

func Join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

// Decode reads a mapping node into the struct v points to, over what v
// holds: keys are matched by their yaml tags, an unknown key is reported
// with the keys known there, and each value is decoded on its own, so one
// bad value is reported with its key and line and the others still read.
// path prefixes the keys named in errors.
func Decode(file string, n *yaml.Node, v any, path string) []error {
	var errs []error
	rv := reflect.ValueOf(v).Elem()
	checkKeys(file, n, rv.Type(), path, &errs)
	decodeFields(file, n, rv, path, &errs)
	return errs
}

// Locate gives each Error that has no line the line of its key, or of the
// nearest key above it that the file has, and sorts the errors by line.
func Locate(errs []error, lines map[string]int) []error {
	for _, err := range errs {
		if e, ok := err.(*Error); ok && e.Line == 0 {
			e.Line = LineOf(lines, e.Key)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool { return errLine(errs[i]) < errLine(errs[j]) })
	return errs
}
