package process

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/route"
)

// markVar is the environment variable that marks an instance as this
// driver's: "<state>/<service>", where <state> is a short hash of the
// absolute state directory. The record file is the driver's index of its
// instances; the mark is the fallback when that file is lost or could not
// be written (a full disk): Adopt finds marked processes in /proc and adopts
// or stops them instead of leaving them unsupervised. Two daemons with
// different state directories never claim each other's instances.
const markVar = "CUTOVER_MARK"

// mark returns this driver's mark value.
func (d *Driver) mark() string {
	dir, err := filepath.Abs(d.stateDir)
	if err != nil {
		dir = d.stateDir
	}
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8]) + "/" + d.name
}

// findMarked lists the live processes that carry this driver's mark and
// lead their own process group (an instance's children inherit its
// environment but not its group leadership), by pid. The identity fields
// come from the variables the driver gives every instance; a process
// whose variables cannot be read back is ignored.
func (d *Driver) findMarked() []instanceRecord {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		d.log.Error("scan /proc for marked instances", "err", err)
		return nil
	}
	want := markVar + "=" + d.mark()
	var out []instanceRecord
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, []byte(want)) {
			continue
		}
		st, err := readStat(pid)
		if err != nil || dead(st.state) || st.pgrp != pid {
			continue
		}
		if ir, ok := parseMarked(pid, st.startTicks, env, want); ok {
			out = append(out, ir)
		}
	}
	slices.SortFunc(out, func(a, b instanceRecord) int { return a.PID - b.PID })
	return out
}

// parseMarked reads an instance's identity back from its NUL-separated
// environment. The driver sets these variables last, so they are its own
// whatever the configured env says.
func parseMarked(pid int, startTicks uint64, environ []byte, want string) (instanceRecord, bool) {
	vars := map[string]string{}
	found := false
	for _, kv := range bytes.Split(environ, []byte{0}) {
		s := string(kv)
		if s == want {
			found = true
		}
		if k, v, ok := strings.Cut(s, "="); ok {
			vars[k] = v // the last value wins, as it did for the process
		}
	}
	if !found || vars[markVar] != strings.TrimPrefix(want, markVar+"=") {
		return instanceRecord{}, false
	}
	color, err := route.ParseColor(vars["COLOR"])
	if err != nil {
		return instanceRecord{}, false
	}
	port, err := strconv.Atoi(vars["PORT"])
	if err != nil || port <= 0 {
		return instanceRecord{}, false
	}
	id := vars["INSTANCE"]
	i := strings.LastIndexByte(id, '-')
	slot, err := strconv.Atoi(id[i+1:])
	if i < 0 || err != nil || slot < 1 || vars["VERSION"] == "" {
		return instanceRecord{}, false
	}
	return instanceRecord{ID: id, Slot: slot, PID: pid, Color: color, Version: vars["VERSION"],
		Port: port, StartTicks: startTicks}, true
}
