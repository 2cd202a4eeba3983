// Package process is the runtime driver that runs a service's instances as
// local processes: it launches a pool per colour, health-gates it, replaces
// instances that exit, stops them gracefully, captures their output, and
// re-adopts them after the daemon restarts.
//
// # Starting a pool
//
// Start launches a pool's instances in slot order, Options.Parallel at a
// time (one by default), each health-gated before the next slot starts, so
// that an application that migrates its schema at start does so once, in
// the first instance. An instance that exits before it is healthy is
// started again with backoff, within its start timeout, as the supervisor
// does after the start; one that exits more than CrashLoopRestarts times,
// or is not healthy within the start timeout, fails the start. A failed
// start stops everything it launched (never the other colour) and its
// error tells, per instance, which exited and how (exit code or signal,
// last output), which were still starting and which never started.
//
// # Environment
//
// An instance gets a clean environment, built at its start: PATH, HOME,
// LANG and TZ of the daemon's, then Options.InheritEnv, EnvFile, Env,
// Secrets and the driver's own variables, each overriding the one before
// (see Options.Env). Nothing else of the daemon's environment (its
// CUTOVER_TOKEN, cloud credentials) reaches an instance. The env file and
// secrets are read at every start, so a rotation applies to the next
// instance; their values are held only in the instance's environment,
// never in the driver's log, the instance's log file or the record file.
//
// # Survival of the daemon
//
// Instances must outlive a daemon that is killed (kill -9) so that the next
// daemon can adopt them. So each instance runs in its own process group
// without a parent-death signal, its stdout and stderr are opened directly
// on its log file (O_APPEND) rather than piped through the daemon (a pipe
// whose reader died would SIGPIPE the instance), and every running instance
// is recorded (pid, process start time, port, colour, version) in
// <StateDir>/instances/<service>.json, written atomically on every change.
// Log files are rotated by the driver with copy and truncate, which loses at
// most the lines written between the copy and the truncation.
//
// # Concurrency
//
// A Driver is safe for concurrent use. Start and Stop of one colour are
// serialised; the two colours proceed independently. Listener calls are
// serialised per driver and always carry the state at the time of the call,
// so the last call for a colour is its current pool. A Listener must not
// call Start or Stop of the same driver from inside Pool or Failed (those
// calls are made while a colour's operation may be in progress); hand the
// work to another goroutine instead. Each pool slot has one
// supervising goroutine, owned by the pool and stopped by Stop or Close.
package process
