// Command measure runs a command and prints, on one line to the file given
// by -o, its wall time in seconds, user and system CPU seconds and peak RSS
// in KiB: the figures of /usr/bin/time -f '%e %U %S %M', at microsecond
// resolution (getrusage of the child) instead of 10 ms.
//
// Usage: measure -o FILE COMMAND [ARGS...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	out := flag.String("o", "", "write the figures to `FILE` (default stderr)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure -o FILE COMMAND [ARGS...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(2)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	line := fmt.Sprintf("%.6f %.6f %.6f %d\n", wall.Seconds(), sec(ru.Utime), sec(ru.Stime), ru.Maxrss)
	w := os.Stderr
	if *out != "" {
		f, ferr := os.Create(*out)
		if ferr != nil {
			fmt.Fprintln(os.Stderr, "measure:", ferr)
			os.Exit(2)
		}
		defer f.Close()
		w = f
	}
	fmt.Fprint(w, line)
	if err != nil {
		os.Exit(cmd.ProcessState.ExitCode())
	}
}
