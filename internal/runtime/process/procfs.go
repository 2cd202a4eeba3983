package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procStat is what the driver reads from /proc/<pid>/stat.
type procStat struct {
	state      byte   // R, S, D, Z, X, ...
	pgrp       int    // process group
	startTicks uint64 // start time in clock ticks after boot; with the pid it names one process
}

// readStat parses /proc/<pid>/stat. The command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("pid %d: malformed /proc stat", pid)
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: pgrp: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: start time: %w", pid, err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTicks: start}, nil
}

func dead(state byte) bool { return state == 'Z' || state == 'X' }

// sameProcess reports whether pid is alive and is the process that started
// at startTicks, so that a pid reused by another program is not mistaken for
// an instance.
func sameProcess(pid int, startTicks uint64) bool {
	st, err := readStat(pid)
	return err == nil && !dead(st.state) && st.startTicks == startTicks
}

// groupAlive reports whether any live (not zombie) process is in the
// process group pgid. Zombies are ignored: their parent (init, once the
// instance is gone) reaps them, and they hold no resources that matter.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.pgrp == pgid && !dead(st.state) {
			return true
		}
	}
	return false
}
