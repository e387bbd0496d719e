package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// phase is one stretch of the run's wall-clock time. The phases follow
// each other without gaps, so they add up to the run's time and show
// where it goes.
type phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	// Load is the machine's one-minute load average when the phase ended.
	Load float64 `json:"load_average_1m"`
}

// phaseClock cuts the run into phases.
type phaseClock struct {
	name  string
	start time.Time
	done  []phase
}

// next ends the current phase and starts one called name.
func (c *phaseClock) next(name string) {
	now := time.Now()
	if c.name != "" {
		c.done = append(c.done, phase{Name: c.name, Duration: now.Sub(c.start), Load: loadAverage()})
	}
	c.name, c.start = name, now
}

// end ends the current phase and returns them all.
func (c *phaseClock) end() []phase {
	c.next("")
	return c.done
}

// loadAverage is the machine's one-minute load average, 0 when unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	_, _ = fmt.Sscan(string(b), &l)
	return l
}

// printPhases writes where the run's time went, with a bar per phase
// scaled to the longest.
func printPhases(w io.Writer, phases []phase, total time.Duration) {
	if len(phases) == 0 {
		return
	}
	fmt.Fprintf(w, "\nTime — %.0f s in all (load average at each phase's end)\n", total.Seconds())
	var longest time.Duration
	for _, p := range phases {
		longest = max(longest, p.Duration)
	}
	for _, p := range phases {
		bar := strings.Repeat("#", int(30*p.Duration/max(longest, 1)))
		fmt.Fprintf(w, "  %-44s %6.1f s  %4.1f  %s\n", p.Name, p.Duration.Seconds(), p.Load, bar)
	}
}
