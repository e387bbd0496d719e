package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// microBench is one `go test -bench` result line.
type microBench struct {
	Package     string  `json:"package"`
	Name        string  `json:"name"`
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  int64   `json:"bytes_per_op"`
	AllocsPerOp int64   `json:"allocs_per_op"`
}

// microResults are the hot-path micro-benchmarks of one run.
type microResults struct {
	Command    string        `json:"command"`
	Benchmarks []microBench  `json:"benchmarks"`
	Duration   time.Duration `json:"duration_ns"`
	Error      string        `json:"error,omitempty"`
}

// microPackages hold the benchmarks: BenchmarkHotPath* (written for this
// instrument, in session/ and the adapter) and the token package's own
// BenchmarkToken* (identity-token reuse and signing).
var microPackages = []string{"./caddymodule/session/", "./caddymodule/", "./caddymodule/token/"}

const microPattern = "^Benchmark(HotPath|Token)"

// runMicro runs the hot-path micro-benchmarks with -benchmem and parses
// their output.
func runMicro(root, benchtime string) microResults {
	args := append([]string{"test", "-run", "^$", "-bench", microPattern, "-benchmem", "-benchtime", benchtime, "-count", "1"}, microPackages...)
	res := microResults{Command: "go " + strings.Join(args, " ")}
	t0 := time.Now()
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res.Duration = time.Since(t0)
	res.Benchmarks = parseBench(out.String())
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		res.Error = err.Error() + ": " + tail
	}
	return res
}

// parseBench reads `go test -bench -benchmem` output.
func parseBench(out string) []microBench {
	var res []microBench
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b := microBench{Package: pkg, Name: f[0]}
		b.Iterations, _ = strconv.ParseInt(f[1], 10, 64)
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			switch unit {
			case "ns/op":
				b.NsPerOp, _ = strconv.ParseFloat(v, 64)
			case "B/op":
				b.BytesPerOp, _ = strconv.ParseInt(v, 10, 64)
			case "allocs/op":
				b.AllocsPerOp, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		res = append(res, b)
	}
	return res
}
