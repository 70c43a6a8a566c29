// The Go side of tests/unit/test_duration.py: parses each string with Go's own
// time.ParseDuration, so that portique/duration.py is checked against real Go.
//
// Input (stdin): a JSON array of strings.
// Output (stdout): a JSON array of {"ns": int64, "ok": bool}.
package main

import (
	"encoding/json"
	"os"
	"time"
)

type result struct {
	Ns int64 `json:"ns"`
	Ok bool  `json:"ok"`
}

func main() {
	var inputs []string
	if err := json.NewDecoder(os.Stdin).Decode(&inputs); err != nil {
		panic(err)
	}
	out := make([]result, len(inputs))
	for i, s := range inputs {
		d, err := time.ParseDuration(s)
		out[i] = result{Ns: int64(d), Ok: err == nil}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
