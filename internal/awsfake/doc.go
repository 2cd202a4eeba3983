// Package awsfake is a fake AWS for tests: one HTTP endpoint on 127.0.0.1
// that the real aws-sdk-go-v2 clients reach through BaseEndpoint (or the
// real binary through AWS_ENDPOINT_URL), speaking each service's wire
// protocol as the pinned SDK sends it, and simulating the services'
// behaviour rather than replaying answers.
//
// # Using it
//
//	fake := awsfake.NewTest(t, awsfake.Options{ChangeSyncDelay: time.Second})
//	cfg := fake.Config()                  // aws.Config: static keys, region, BaseEndpoint
//	elbc := elasticloadbalancingv2.NewFromConfig(cfg)
//	env := fake.Env()                     // AWS_ENDPOINT_URL, AWS_REGION, keys: for a child process
//
//	lb := fake.ELB().CreateLoadBalancer("prod")
//	blue := fake.ELB().CreateTargetGroup(awsfake.TargetGroupSpec{Name: "web-blue", HealthCheck: awsfake.HealthCheck{Path: "/healthz"}})
//	fake.ELB().RegisterTarget(blue.ARN, "127.0.0.1", port)   // or an instance id, see SetInstanceHost
//	ln, _ := fake.ELB().CreateListener(lb.ARN, 80, awsfake.Weight{blue.ARN, 1})
//	http.Get(ln.URL)                      // the real data plane
//
// Knobs: Server.Throttle / FailNext / Unavailable / Delay inject failures
// per service and operation (written in the service's own error shape, so
// the SDK's retryer treats Throttling and 5xx as retryable); ELB.SetForward
// and Route53.SetRecord change weights "behind the back" of the code under
// test; CloudWatch.SetAlarm, SetMetricDelay and SetResolution;
// Route53.SetChangeSyncDelay and SetHealthCheck; Server.Calls counts calls.
// Options.TLS serves HTTPS with a certificate from Server.CABundle (for
// AWS_CA_BUNDLE).
//
// As its own process: cmd/awsfake reads a JSON Topology, prints what it
// created (ARNs, dimensions, listener URLs, the SDK environment) and takes
// the same knobs over plain HTTP under ControlPrefix.
//
// # What is simulated
//
// ELBv2: load balancers, HTTP listeners (a real listener on 127.0.0.1 per
// ELBv2 listener) with a default action and rules (path-pattern,
// host-header), forward actions over up to 5 weighted target groups with
// group stickiness (AWSALBTG cookie), fixed responses; target groups with
// lb_cookie stickiness (AWSALB cookie), deregistration delay and real
// HTTP health checks (interval, thresholds, matcher). Target states follow
// AWS: initial, healthy, unhealthy (Target.ResponseCodeMismatch,
// Target.Timeout, Target.FailedHealthChecks), draining until the delay
// passes or no request is in flight, unused when no listener or rule
// forwards to the group. The data plane picks a group by weight per
// request, a target round-robin among the healthy ones (all unhealthy:
// "fail open" to them; none: 503 from the load balancer), proxies over
// keep-alive connections (adding X-Forwarded-For/Proto/Port and
// X-Amzn-Trace-Id), and swaps route tables atomically on every change. Validation: ARN shapes, missing members, weights 0..999,
// duplicate groups, a group already used by another load balancer
// (TargetGroupAssociationLimit), unknown resources (TargetGroupNotFound,
// ListenerNotFound, RuleNotFound, LoadBalancerNotFound).
//
// CloudWatch: GetMetricData (MetricStat queries) and GetMetricStatistics
// over AWS/ApplicationELB RequestCount, HTTPCode_Target_{2,3,4,5}XX_Count,
// HTTPCode_ELB_{4,5}XX_Count, TargetConnectionErrorCount (a request whose
// target refused the connection: its client gets the load balancer's 502)
// and TargetResponseTime with Sum, SampleCount,
// Average, Minimum, Maximum and pNN, from the data plane's records
// (RequestCount counts only requests for which a target was chosen), per
// period aligned on the epoch, newest first unless ScanBy says otherwise,
// published only once a whole storage interval (1 s, or 60 s as AWS) has
// ended and the delay has passed. Dimensions are AWS's: TargetGroup
// (targetgroup/NAME/ID) with LoadBalancer (app/NAME/ID), or LoadBalancer
// alone; as on AWS, the ELB_* codes exist only per load balancer, so a
// query naming a TargetGroup for them has no data points. DescribeAlarms
// and SetAlarmState over alarms made with PutAlarm; the fake never
// evaluates an alarm itself.
//
// Route53: hosted zones (with their apex NS and SOA), simple, weighted and
// failover record sets, alias or with values and a TTL;
// ChangeResourceRecordSets applies a batch in full or not at all with
// Route53's InvalidInput and InvalidChangeBatch messages (CREATE of an
// existing set, DELETE that does not match exactly or finds nothing,
// weights 0..255, SetIdentifier required with a routing policy, alias with
// a TTL, names outside the zone, CNAME conflicts, simple beside weighted);
// each change is PENDING for the change delay, then INSYNC; Resolve answers
// from INSYNC changes only. ListResourceRecordSets (with name, type,
// identifier, maxitems paging), GetChange, GetHostedZone,
// ListHostedZonesByName.
//
// Not simulated: HTTPS/HTTP2 listeners, authenticate actions, redirects
// beyond a plain 302, other rule conditions, slow start and least
// outstanding requests, availability zones, health checks of unused
// groups being skipped, metric math and pagination of GetMetricData,
// alarm evaluation, latency/geo/multivalue routing, Route53 health checks
// other than SetHealthCheck, signature verification, IAM.
//
// # Dispatch
//
// Every request is routed by the service name of its SigV4 credential scope
// (Authorization: ... Credential=AKID/date/region/SERVICE/aws4_request):
// "elasticloadbalancing", "monitoring" (CloudWatch), "route53",
// "autoscaling", "ec2". Unsigned requests are refused with
// MissingAuthenticationToken, as AWS does; signatures are not verified.
//
// # Adding a service (Auto Scaling, EC2)
//
// Another file of this package registers a builder in init:
//
//	func init() { extraServices["autoscaling"] = func(s *Server) Service { return newAutoScaling(s).service() } }
//
// A query service is a *QueryService: XMLNS (the response namespace), EC2
// for the EC2 dialect, and Actions mapping an Action name to a
// func(*Query) (any, error). The handler reads parameters with Query.Get,
// Required, Int, Members/Strings (awsQuery lists, Prefix.member.N) or
// EC2Members/EC2Strings (EC2 lists, Prefix.N), and returns a value that
// encoding/xml marshals as the children of <ActionResult> (awsQuery) or of
// <ActionResponse> (EC2; <requestId> is added), or an *APIError (Errorf,
// ValidationError, Throttling) written as <ErrorResponse><Error> (awsQuery)
// or <Response><Errors><Error> (EC2). Background work (instance
// lifecycles) runs with Server.Go and stops on Server.Context's end.
// Instances reach the load balancer with ELB.SetInstanceHost (where an
// instance id's targets listen), ELB.RegisterTarget / DeregisterTarget
// and ELB.Health.
//
// # What the pinned SDKs send (verified with a logging server)
//
//   - ELBv2 (elasticloadbalancingv2 v1.64.0) and Auto Scaling (autoscaling
//     v1.81.0): awsQuery, POST / with Content-Type
//     application/x-www-form-urlencoded, Action=...&Version=2015-12-01
//     (2011-01-01), lists as Name.member.N; responses are
//     <ActionResponse><ActionResult>, errors <ErrorResponse><Error><Code>.
//   - EC2 (ec2 v1.344.3): the EC2 query dialect, Version=2016-11-15, lists
//     as Name.N.
//   - Route53 (route53 v1.70.10): REST-XML under /2013-04-01/ (the SDK
//     strips the /hostedzone/ prefix from ids); errors
//     <ErrorResponse><Error><Code>, InvalidChangeBatch as
//     <InvalidChangeBatch><Messages><Message>.
//   - CloudWatch (cloudwatch v1.75.7): Smithy RPC v2 CBOR, POST
//     /service/GraniteServiceVersion20100801/operation/OPERATION with
//     Smithy-Protocol: rpc-v2-cbor, Content-Type and Accept
//     application/cbor, X-Amzn-Query-Mode: true; timestamps are CBOR tag 1
//     floats. Errors carry __type and message in the CBOR body and the
//     awsQuery code in X-Amzn-Query-Error: Code;Sender.
//
// # Concurrency
//
// A Server is safe for concurrent use. The data plane reads immutable
// snapshots (route tables, routable targets) through atomic pointers, so a
// ModifyListener swaps weights without refusing or delaying a request.
package awsfake
