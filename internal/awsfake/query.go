package awsfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Query is one decoded awsQuery (or EC2 query) request: the Action and its
// form parameters, flattened the way the SDK sends them
// (Names.member.1=a for awsQuery lists, Name.1=a for EC2 lists,
// Struct.Field=v for nested members).
type Query struct {
	Action string
	Form   url.Values
}

// parseQuery reads a form-encoded POST body.
func parseQuery(body []byte) (*Query, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, Errorf("MalformedQueryString", "the request body is not form-encoded: %v", err)
	}
	q := &Query{Action: form.Get("Action"), Form: form}
	if q.Action == "" {
		return nil, Errorf("MissingAction", "the request has no Action parameter")
	}
	return q, nil
}

// Get returns a parameter's value, "" when absent.
func (q *Query) Get(name string) string { return q.Form.Get(name) }

// Has reports whether a parameter is present.
func (q *Query) Has(name string) bool { _, ok := q.Form[name]; return ok }

// Required returns a parameter or the ValidationError AWS gives when a
// required member is missing.
func (q *Query) Required(name string) (string, error) {
	v := q.Form.Get(name)
	if v == "" {
		return "", ValidationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v, nil
}

// Int returns an integer parameter; ok is false when it is absent.
func (q *Query) Int(name string) (v int64, ok bool, err error) {
	s := q.Form.Get(name)
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, ValidationError("value '%s' at '%s' is not an integer", s, lowerFirst(name))
	}
	return v, true, nil
}

// Members returns the prefixes of an awsQuery list's entries in order:
// for prefix "Targets" they are "Targets.member.1", "Targets.member.2", ...
// Use them as prefixes for the entries' fields, or with Get for lists of
// scalars.
func (q *Query) Members(prefix string) []string {
	return q.indexed(prefix + ".member.")
}

// Strings returns an awsQuery list of scalars (Prefix.member.N).
func (q *Query) Strings(prefix string) []string {
	var out []string
	for _, p := range q.Members(prefix) {
		out = append(out, q.Form.Get(p))
	}
	return out
}

// EC2Members is Members for the EC2 query dialect, whose lists are
// flattened as Prefix.N.
func (q *Query) EC2Members(prefix string) []string {
	return q.indexed(prefix + ".")
}

// EC2Strings is Strings for the EC2 query dialect (Prefix.N).
func (q *Query) EC2Strings(prefix string) []string {
	var out []string
	for _, p := range q.EC2Members(prefix) {
		out = append(out, q.Form.Get(p))
	}
	return out
}

// indexed finds the distinct N of keys that start with base+N and returns
// base+N for each, sorted by N.
func (q *Query) indexed(base string) []string {
	seen := map[int]bool{}
	for k := range q.Form {
		rest, ok := strings.CutPrefix(k, base)
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err == nil && n > 0 {
			seen[n] = true
		}
	}
	ns := make([]int, 0, len(seen))
	for n := range seen {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = base + strconv.Itoa(n)
	}
	return out
}

// QueryAction handles one Action of a query service. It returns the value
// to marshal with encoding/xml as the Action's result element (its fields
// become the children of <ActionResult>, or of <ActionResponse> for EC2),
// or an error; an *APIError keeps its code and status, any other error is an
// InternalFailure.
type QueryAction func(q *Query) (any, error)

// QueryService is a service speaking awsQuery (ELBv2, Auto Scaling,
// CloudWatch's old protocol) or, with EC2 set, the EC2 query dialect.
type QueryService struct {
	// XMLNS is the namespace of the responses, e.g.
	// "http://autoscaling.amazonaws.com/doc/2011-01-01/".
	XMLNS string
	// EC2 selects the EC2 dialect: results directly under <ActionResponse>
	// with a <requestId>, errors as <Response><Errors><Error>.
	EC2     bool
	Actions map[string]QueryAction
}

// Operation implements Service.
func (s *QueryService) Operation(r *http.Request, body []byte) string {
	q, err := parseQuery(body)
	if err != nil {
		return ""
	}
	return q.Action
}

// Serve implements Service.
func (s *QueryService) Serve(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		s.WriteError(w, Errorf("InvalidAction", "the fake takes only POST"))
		return
	}
	q, err := parseQuery(body)
	if err != nil {
		s.WriteError(w, asAPIError(err))
		return
	}
	act, ok := s.Actions[q.Action]
	if !ok {
		s.WriteError(w, Errorf("InvalidAction", "The action %s is not valid for this web service (not simulated by awsfake).", q.Action))
		return
	}
	res, err := act(q)
	if err != nil {
		s.WriteError(w, asAPIError(err))
		return
	}
	s.writeResult(w, q.Action, res)
}

func (s *QueryService) writeResult(w http.ResponseWriter, action string, res any) {
	inner, err := marshalInner(res)
	if err != nil {
		s.WriteError(w, asAPIError(fmt.Errorf("marshal %s result: %w", action, err)))
		return
	}
	id := newRequestID()
	var b strings.Builder
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<%sResponse xmlns=\"%s\">", action, s.XMLNS)
	if s.EC2 {
		fmt.Fprintf(&b, "<requestId>%s</requestId>%s", id, inner)
	} else {
		fmt.Fprintf(&b, "<%sResult>%s</%sResult>", action, inner, action)
		fmt.Fprintf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>", id)
	}
	fmt.Fprintf(&b, "</%sResponse>", action)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", id)
	io.WriteString(w, b.String())
}

// marshalInner encodes res's fields as XML without an element of its own.
func marshalInner(res any) (string, error) {
	if res == nil {
		return "", nil
	}
	var b strings.Builder
	enc := xml.NewEncoder(&b)
	if err := enc.EncodeElement(res, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil {
		return "", err
	}
	if err := enc.Flush(); err != nil {
		return "", err
	}
	s := strings.TrimPrefix(b.String(), "<x>")
	return strings.TrimSuffix(s, "</x>"), nil
}

// WriteError implements Service.
func (s *QueryService) WriteError(w http.ResponseWriter, e *APIError) {
	writeQueryError(w, e, s.EC2)
}

func writeQueryError(w http.ResponseWriter, e *APIError, ec2 bool) {
	var b strings.Builder
	b.WriteString(xml.Header)
	id := newRequestID()
	if ec2 {
		fmt.Fprintf(&b, "<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>",
			xmlEscape(e.Code), xmlEscape(e.Message), id)
	} else {
		fmt.Fprintf(&b, "<ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
			e.faultName(), xmlEscape(e.Code), xmlEscape(e.Message), id)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", id)
	w.WriteHeader(e.Status)
	io.WriteString(w, b.String())
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
