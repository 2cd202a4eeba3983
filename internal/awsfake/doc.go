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
// per service and operation; ELB.SetForward changes weights "behind the
// back" of the code under test; Server.Calls counts calls.
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
