// The Go side of tests/unit/cli/test_cli_gotemplate_go.py: executes each case
// of tests/support/gotemplate_cases.py with Go's own text/template, so that the
// expected strings written in that table are checked against real Go.
//
// Input (stdin): a JSON array of {"tmpl", "data", "missingkey"}.
// Output (stdout): a JSON array of {"out", "err"}.
package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"text/template"
)

type Inner struct {
	A int
	B string
}

type T struct {
	Str        string
	Int        int
	Neg        int
	Float      float64
	True       bool
	False      bool
	Empty      string
	Zero       int
	Uint       uint8
	List       []string
	Nums       []int
	EmptyList  []string
	IList      []interface{}
	Map        map[string]string
	IMap       map[string]interface{}
	EmptyMap   map[string]int
	Inner      Inner
	PInner     *Inner
	Nil        *Inner
	NilIface   interface{}
	unexported int
}

func (t *T) Hello() string                { return "hello!" }
func (t *T) Echo(s string) string         { return "<" + s + ">" }
func (t *T) Add(a, b int) int             { return a + b }
func (t *T) Fail() (string, error)        { return "", errors.New("failed here") }
func (t *T) Ptr() *Inner                  { return t.PInner }
func (t *T) Label(name string) string     { return t.Map[name] }
func (t *T) Cat(parts ...string) string   { return strings.Join(parts, "+") }

// The JSON document shared with the Python side (gotemplate_cases.DOC).
const doc = `{
  "Name": "/web",
  "Id": "0123456789abcdef",
  "State": {"Running": true, "Pid": 4242, "ExitCode": 0, "Status": "running"},
  "Config": {"Env": ["A=1", "B=2"], "Labels": {"com.example.v": "1", "b": "two"}, "Cmd": null},
  "NetworkSettings": {
    "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null},
    "Networks": {"my-net": {"IPAddress": "10.89.0.2", "Aliases": ["web"]}, "bridge": {"IPAddress": "172.17.0.2", "Aliases": null}}
  },
  "Num": 1.5,
  "Count": 3,
  "Tags": []
}`

func makeT() *T {
	return &T{
		Str: "hello", Int: 42, Neg: -7, Float: 3.25, True: true, Uint: 7,
		List: []string{"a", "b", "c"}, Nums: []int{1, 2, 3}, EmptyList: []string{},
		IList:    []interface{}{1, "two", 3.5, nil, true},
		Map:      map[string]string{"one": "1", "two": "2", "com.x.y": "dotted"},
		IMap:     map[string]interface{}{"k": "v", "n": nil, "inner": map[string]interface{}{"deep": "yes"}},
		EmptyMap: map[string]int{},
		Inner:    Inner{1, "x"}, PInner: &Inner{2, "y"}, unexported: 5,
	}
}

type input struct {
	Tmpl       string `json:"tmpl"`
	Data       string `json:"data"`
	MissingKey string `json:"missingkey"`
}

type output struct {
	Out string `json:"out"`
	Err string `json:"err"`
}

func data(spec string) interface{} {
	switch {
	case spec == "T":
		return makeT()
	case spec == "J":
		var v interface{}
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			panic(err)
		}
		return v
	case strings.HasPrefix(spec, "v:"):
		var v interface{}
		if err := json.Unmarshal([]byte(spec[2:]), &v); err != nil {
			panic(err)
		}
		return v
	}
	return nil
}

func main() {
	var cases []input
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	results := make([]output, len(cases))
	for i, c := range cases {
		tmpl := template.New("t")
		if c.MissingKey != "" {
			tmpl = tmpl.Option("missingkey=" + c.MissingKey)
		}
		tmpl, err := tmpl.Parse(c.Tmpl)
		if err != nil {
			results[i] = output{Err: err.Error()}
			continue
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data(c.Data)); err != nil {
			results[i] = output{Out: b.String(), Err: err.Error()}
			continue
		}
		results[i] = output{Out: b.String()}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		panic(err)
	}
}
