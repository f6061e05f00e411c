//go:build !linux

package tracer

import "time"

func sleepFor(d time.Duration) { time.Sleep(d) }
