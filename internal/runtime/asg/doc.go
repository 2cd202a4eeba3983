// Package asg is the runtime driver that makes two EC2 Auto Scaling groups
// the blue and green pools of a service, the way the AWS blue/green
// write-ups do: both groups run versions of one launch template, a
// deployment gives the idle group a launch template version with the new
// image and the live group's capacity, and retirement scales the old group
// to zero (or deletes it, the write-ups' "clean staging").
//
// What it guarantees:
//   - Start returns only once the group has its full capacity: every one of
//     the desired instances is InService, Healthy for Auto Scaling, runs the
//     launch template version of the release and is healthy in each of the
//     group's target groups. So the candidate has the live group's capacity
//     before the controller gives it its first step (the write-ups' "let
//     green scale out before it takes load"). A group that cannot get there
//     within the start timeout fails with the group's own scaling
//     activities' messages.
//   - The groups are found as they are: the tags cutover:color and
//     cutover:version say what a group runs; a group whose cutover:color
//     names the other colour is refused (the configuration swapped them).
//     Every call is idempotent, so a Start run again after a daemon crash
//     converges on the same launch template version and group settings
//     (CreateLaunchTemplateVersion carries a client token derived from the
//     release).
//   - Stop scales the group to zero, or deletes it and the launch template
//     version cutover made for it. The controller calls it only after the
//     traffic driver drained the colour and found it quiet (invariant 3).
//   - Describe reports what a colour runs, and Drift compares the groups
//     (subnets and zones, instance type, security groups, IAM instance
//     profile, health check settings, tags other than the colour and
//     version ones) before a deployment.
//
// It relies on the controller for ordering (drain before stop, never both
// colours stopped) and on the traffic driver for weights; it reports each
// colour's healthy instances (private address and the target group's port)
// to its Listener, so the embedded router can also forward to them.
//
// Concurrency: the methods of Driver are safe for concurrent use; one
// goroutine owned by the driver polls the groups until Close.
package asg
