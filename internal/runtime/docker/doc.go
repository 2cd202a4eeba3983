// Package docker is the runtime driver that runs a service's instances as
// containers on one or more Docker Engines (the local socket, tcp:// hosts
// with TLS, ssh:// hosts), through the Engine API.
//
// # Pools and hosts
//
// Start runs Options.Instances containers of the colour's image, spread
// over the hosts round-robin by slot (slot 1 on the first host, slot 2 on
// the second, ...). Each container publishes its Options.Port on a port
// of its host that the engine chooses (on 127.0.0.1 for a local unix://
// engine, on every address for a remote one), or runs in the host's
// network with PORT set to a free port when Options.Network is "host".
// The router forwards to host:port. Before anything starts, every host
// is pinged: an unreachable host fails the start, naming the host, so a
// deployment fails before any traffic moves. A container is healthy when
// its HTTP health check passes and, when its image has a HEALTHCHECK,
// when the engine reports it healthy too.
//
// # Labels and adoption
//
// Every container carries the labels cutover.service, cutover.color,
// cutover.version and cutover.instance (the slot), plus Options.Labels.
// Adopt lists them on every host after a daemon restart (or kill -9): the
// running containers of the pools the controller says are serving are
// taken over as they are (same container IDs); a second container
// claiming a slot, exited containers, and containers of colours that are
// not serving are removed, so a pool is never duplicated.
//
// # Supervision
//
// Each slot has a goroutine that inspects its container every
// WatchInterval. A container that exited, was removed, turned unhealthy
// (HEALTHCHECK) or whose host stopped answering is taken out of the pool,
// removed when its host answers, and replaced with backoff (doubling from
// RestartBackoff to MaxRestartBackoff), on the slot's host when it
// answers and otherwise on the reachable host with the fewest of the
// pool's containers. More than CrashLoopRestarts replacements within
// CrashLoopWindow fail the pool through Listener.Failed, which makes the
// controller roll back, as for process pools.
//
// # Stopping
//
// Stop sends SIGTERM to each container, waits StopTimeout (the engine
// then sends SIGKILL), and removes it.
//
// # Images
//
// Options.Pull is always, missing (the default) or never. Pull progress
// (layers and bytes) goes to Options.Progress; a failed pull names the
// host, the registry and what the registry said (authentication, not
// found). Credentials come from the Docker client's config file
// ($DOCKER_CONFIG/config.json or ~/.docker/config.json): its "auths"
// entries, and credential helpers ("credsStore", "credHelpers") run as
// docker-credential-<name>.
//
// # Secrets
//
// EnvFile and Secrets are read at every container start and passed only in
// the container's environment: never logged, never in the driver's
// errors, never in labels. Describe shows them as hashes. Note that anyone
// who can inspect the container on its engine can read them, as with any
// container environment.
//
// # What it relies on the controller for
//
// The driver stops a pool only when told to (Stop, or Start of another
// release in the same colour), so invariant 3 (the previous pool is not
// stopped before the candidate held all traffic and the old pool drained)
// is the controller's; so is invariant 1 across a switch, for which the
// driver's part is to report a container to the router only once it is
// healthy and to take it out before it is removed. Replacements and host
// losses change a pool through Listener.Pool, never by stopping the
// other colour.
//
// # Concurrency
//
// A Driver is safe for concurrent use. Start and Stop of one colour are
// serialised; the colours proceed independently. Listener calls are
// serialised. Supervising goroutines are owned by their pool and stopped
// by Stop or Close; Close leaves every container running for the next
// daemon's Adopt.
package docker
