package awsfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const route53XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"

// Route53 simulates hosted zones and their record sets: simple, weighted
// and failover records, alias or with values and a TTL, changed in atomic
// batches validated as Route53 does, each change PENDING until the
// server's change delay has passed and INSYNC after. Resolve answers what
// a DNS client would get now: only INSYNC changes have reached the
// "name servers".
type Route53 struct {
	s  *Server
	mu sync.Mutex
	// delay is how long a change stays PENDING.
	delay   time.Duration
	zones   map[string]*zone
	changes map[string]*change
	pending []*change // submitted, not yet INSYNC, oldest first
	// unhealthy lists health check ids the test marked failing.
	unhealthy map[string]bool
}

type zone struct {
	id, name string
	records  []Record
	// served is the record set the name servers answer with: it follows
	// records when a change goes INSYNC.
	served []Record
}

type change struct {
	id        string
	zone      *zone
	submitted time.Time
	insync    time.Time
	comment   string
	result    []Record
	applied   bool
}

// Record is a resource record set.
type Record struct {
	Name          string // fully qualified, with the trailing dot
	Type          string
	SetIdentifier string
	Weight        *int64
	Failover      string // PRIMARY | SECONDARY
	TTL           *int64 // seconds; nil for alias records
	Values        []string
	Alias         *Alias
	HealthCheckID string
}

// Alias is an alias target.
type Alias struct {
	HostedZoneID         string
	DNSName              string
	EvaluateTargetHealth bool
}

// HostedZone describes a fake hosted zone.
type HostedZone struct {
	ID   string // Z..., without /hostedzone/
	Name string
}

func newRoute53(s *Server) *Route53 {
	return &Route53{s: s, delay: s.opts.ChangeSyncDelay, zones: map[string]*zone{}, changes: map[string]*change{}, unhealthy: map[string]bool{}}
}

// Route53 is the Route53 simulation.
func (s *Server) Route53() *Route53 { return s.r53 }

// SetChangeSyncDelay changes how long later changes stay PENDING.
func (r *Route53) SetChangeSyncDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

func upperID(prefix string, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := []byte(prefix)
	for i := 0; i < n; i++ {
		b = append(b, alphabet[rand.IntN(len(alphabet))])
	}
	return string(b)
}

// fqdn lowercases a name and adds the trailing dot, as Route53 stores it.
func fqdn(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// CreateHostedZone creates a public hosted zone with its apex NS and SOA
// records, as Route53 does.
func (r *Route53) CreateHostedZone(name string) HostedZone {
	r.mu.Lock()
	defer r.mu.Unlock()
	z := &zone{id: upperID("Z", 19), name: fqdn(name)}
	ns := []string{"ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk.", "ns-3.awsdns-03.com.", "ns-4.awsdns-04.net."}
	z.records = []Record{
		{Name: z.name, Type: "NS", TTL: ptr(int64(172800)), Values: ns},
		{Name: z.name, Type: "SOA", TTL: ptr(int64(900)), Values: []string{"ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"}},
	}
	z.served = z.records
	r.zones[z.id] = z
	return HostedZone{ID: z.id, Name: z.name}
}

func ptr[T any](v T) *T { return &v }

// Records returns a zone's record sets as the API lists them now.
func (r *Route53) Records(zoneID string) ([]Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	z := r.zones[zoneID]
	if z == nil {
		return nil, noSuchZone(zoneID)
	}
	return cloneRecords(z.records), nil
}

// SetRecord creates or replaces a record set at once and in sync, as a
// change made outside the code under test (the console) would look once
// propagated. It is validated like an UPSERT.
func (r *Route53) SetRecord(zoneID string, rec Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	z := r.zones[zoneID]
	if z == nil {
		return noSuchZone(zoneID)
	}
	up := []rrChange{{action: "UPSERT", rec: rec}}
	next, err := applyChanges(z, up)
	if err != nil {
		return err
	}
	z.records = next
	// The name servers and the changes still on their way get it too, so
	// that a PENDING change does not undo it when it syncs.
	if served, err := applyChanges(&zone{id: z.id, name: z.name, records: z.served}, up); err == nil {
		z.served = served
	}
	for _, c := range r.pending {
		if c.zone != z {
			continue
		}
		if res, err := applyChanges(&zone{id: z.id, name: z.name, records: c.result}, up); err == nil {
			c.result = res
		}
	}
	return nil
}

// SetHealthCheck marks a Route53 health check healthy or not, for failover
// records that name it.
func (r *Route53) SetHealthCheck(id string, healthy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unhealthy[id] = !healthy
}

// Resolve returns the record set a DNS client querying name and type would
// get now, from the changes that are INSYNC: one weighted record picked by
// weight (all of them evenly when every weight is 0), the healthy failover
// record (PRIMARY first), or the simple record. ok is false when none
// answers.
func (r *Route53) Resolve(zoneID, name, typ string) (rec Record, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	z := r.zones[zoneID]
	if z == nil {
		return Record{}, false
	}
	name = fqdn(name)
	var set []Record
	for _, rr := range z.served {
		if rr.Name == name && (rr.Type == typ || rr.Type == "CNAME") {
			set = append(set, rr)
		}
	}
	if len(set) == 0 {
		return Record{}, false
	}
	healthy := func(rr Record) bool { return rr.HealthCheckID == "" || !r.unhealthy[rr.HealthCheckID] }
	switch {
	case set[0].Weight != nil:
		var live []Record
		total := int64(0)
		for _, rr := range set {
			if healthy(rr) {
				live = append(live, rr)
				total += *rr.Weight
			}
		}
		if len(live) == 0 {
			return Record{}, false
		}
		if total == 0 {
			return live[rand.IntN(len(live))], true
		}
		n := rand.Int64N(total)
		for _, rr := range live {
			if n < *rr.Weight {
				return rr, true
			}
			n -= *rr.Weight
		}
	case set[0].Failover != "":
		sort.Slice(set, func(i, j int) bool { return set[i].Failover == "PRIMARY" })
		for _, rr := range set {
			if healthy(rr) {
				return rr, true
			}
		}
		return set[len(set)-1], true
	}
	return set[0], true
}

// syncLocked applies to the name servers the changes whose delay has passed.
func (r *Route53) syncLocked() {
	now := time.Now()
	for len(r.pending) > 0 && !now.Before(r.pending[0].insync) {
		c := r.pending[0]
		r.pending = r.pending[1:]
		c.applied = true
		c.zone.served = c.result
	}
}

func noSuchZone(id string) *APIError {
	return statusErrorf(http.StatusNotFound, "NoSuchHostedZone", "No hosted zone found with ID: %s", id)
}

func cloneRecords(rs []Record) []Record {
	out := make([]Record, len(rs))
	for i, rr := range rs {
		rr.Values = append([]string(nil), rr.Values...)
		out[i] = rr
	}
	return out
}

// The REST-XML face.

func (r *Route53) service() Service { return &restXMLService{r: r} }

type restXMLService struct{ r *Route53 }

const r53Prefix = "/2013-04-01/"

// route parses the path into an operation and its ids.
func r53Route(req *http.Request) (op, zoneID, changeID string) {
	p, ok := strings.CutPrefix(req.URL.Path, r53Prefix)
	if !ok {
		return "", "", ""
	}
	parts := strings.Split(p, "/")
	switch {
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && req.Method == http.MethodPost:
		return "ChangeResourceRecordSets", parts[1], ""
	case len(parts) == 3 && parts[0] == "hostedzone" && parts[2] == "rrset" && req.Method == http.MethodGet:
		return "ListResourceRecordSets", parts[1], ""
	case len(parts) == 2 && parts[0] == "hostedzone" && req.Method == http.MethodGet:
		return "GetHostedZone", parts[1], ""
	case len(parts) == 1 && parts[0] == "hostedzonesbyname" && req.Method == http.MethodGet:
		return "ListHostedZonesByName", "", ""
	case len(parts) == 2 && parts[0] == "change" && req.Method == http.MethodGet:
		return "GetChange", "", parts[1]
	}
	return "", "", ""
}

func (s *restXMLService) Operation(req *http.Request, _ []byte) string {
	op, _, _ := r53Route(req)
	return op
}

func (s *restXMLService) Serve(w http.ResponseWriter, req *http.Request, body []byte) {
	op, zoneID, changeID := r53Route(req)
	var res any
	var err error
	switch op {
	case "ChangeResourceRecordSets":
		res, err = s.r.apiChange(zoneID, body)
	case "ListResourceRecordSets":
		res, err = s.r.apiList(zoneID, req)
	case "GetHostedZone":
		res, err = s.r.apiGetHostedZone(zoneID)
	case "ListHostedZonesByName":
		res, err = s.r.apiListByName(req)
	case "GetChange":
		res, err = s.r.apiGetChange(changeID)
	default:
		err = statusErrorf(http.StatusNotFound, "UnknownOperationException", "awsfake does not simulate Route53 %s %s", req.Method, req.URL.Path)
	}
	if err != nil {
		s.WriteError(w, asAPIError(err))
		return
	}
	out, merr := xml.Marshal(res)
	if merr != nil {
		s.WriteError(w, asAPIError(merr))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	io.WriteString(w, xml.Header)
	w.Write(out)
}

func (s *restXMLService) WriteError(w http.ResponseWriter, e *APIError) {
	id := newRequestID()
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-RequestId", id)
	w.WriteHeader(e.Status)
	io.WriteString(w, xml.Header)
	if e.Code == "InvalidChangeBatch" {
		fmt.Fprintf(w, `<InvalidChangeBatch xmlns="%s"><Messages>`, route53XMLNS)
		for _, m := range e.Messages {
			fmt.Fprintf(w, "<Message>%s</Message>", xmlEscape(m))
		}
		fmt.Fprintf(w, "</Messages><RequestId>%s</RequestId></InvalidChangeBatch>", id)
		return
	}
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		route53XMLNS, e.faultName(), xmlEscape(e.Code), xmlEscape(e.Message), id)
}

// XML shapes.

type xmlRRValue struct {
	Value string `xml:"Value"`
}

type xmlRRSet struct {
	Name            string       `xml:"Name"`
	Type            string       `xml:"Type"`
	SetIdentifier   string       `xml:"SetIdentifier,omitempty"`
	Weight          *int64       `xml:"Weight,omitempty"`
	Failover        string       `xml:"Failover,omitempty"`
	TTL             *int64       `xml:"TTL,omitempty"`
	ResourceRecords []xmlRRValue `xml:"ResourceRecords>ResourceRecord,omitempty"`
	AliasTarget     *struct {
		HostedZoneID         string `xml:"HostedZoneId"`
		DNSName              string `xml:"DNSName"`
		EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
	} `xml:"AliasTarget,omitempty"`
	HealthCheckID string `xml:"HealthCheckId,omitempty"`
	// Fields the fake does not simulate; their presence is refused.
	Region      string    `xml:"Region,omitempty"`
	GeoLocation *struct{} `xml:"GeoLocation,omitempty"`
	MultiValue  *bool     `xml:"MultiValueAnswer,omitempty"`
}

func (x xmlRRSet) record() Record {
	rec := Record{Name: x.Name, Type: x.Type, SetIdentifier: x.SetIdentifier, Weight: x.Weight, Failover: x.Failover, TTL: x.TTL, HealthCheckID: x.HealthCheckID}
	for _, v := range x.ResourceRecords {
		rec.Values = append(rec.Values, v.Value)
	}
	if a := x.AliasTarget; a != nil {
		rec.Alias = &Alias{HostedZoneID: a.HostedZoneID, DNSName: a.DNSName, EvaluateTargetHealth: a.EvaluateTargetHealth}
	}
	return rec
}

func xmlOfRecord(rec Record) xmlRRSet {
	x := xmlRRSet{Name: rec.Name, Type: rec.Type, SetIdentifier: rec.SetIdentifier, Weight: rec.Weight, Failover: rec.Failover, TTL: rec.TTL, HealthCheckID: rec.HealthCheckID}
	for _, v := range rec.Values {
		x.ResourceRecords = append(x.ResourceRecords, xmlRRValue{v})
	}
	if a := rec.Alias; a != nil {
		x.AliasTarget = &struct {
			HostedZoneID         string `xml:"HostedZoneId"`
			DNSName              string `xml:"DNSName"`
			EvaluateTargetHealth bool   `xml:"EvaluateTargetHealth"`
		}{a.HostedZoneID, a.DNSName, a.EvaluateTargetHealth}
	}
	return x
}

type xmlChangeInfo struct {
	ID          string `xml:"Id"`
	Status      string `xml:"Status"`
	SubmittedAt string `xml:"SubmittedAt"`
	Comment     string `xml:"Comment,omitempty"`
}

func (r *Route53) changeInfo(c *change) xmlChangeInfo {
	st := "PENDING"
	if !time.Now().Before(c.insync) {
		st = "INSYNC"
	}
	return xmlChangeInfo{ID: "/change/" + c.id, Status: st, SubmittedAt: c.submitted.UTC().Format("2006-01-02T15:04:05.000Z"), Comment: c.comment}
}

type rrChange struct {
	action string
	rec    Record
}

func (r *Route53) apiChange(zoneID string, body []byte) (any, error) {
	var in struct {
		XMLName     xml.Name `xml:"ChangeResourceRecordSetsRequest"`
		ChangeBatch struct {
			Comment string `xml:"Comment"`
			Changes []struct {
				Action            string    `xml:"Action"`
				ResourceRecordSet *xmlRRSet `xml:"ResourceRecordSet"`
			} `xml:"Changes>Change"`
		} `xml:"ChangeBatch"`
	}
	if err := xml.Unmarshal(body, &in); err != nil {
		return nil, Errorf("InvalidInput", "Invalid XML ; %v", err)
	}
	if len(in.ChangeBatch.Changes) == 0 {
		return nil, Errorf("InvalidInput", "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	var cs []rrChange
	for i, c := range in.ChangeBatch.Changes {
		if c.ResourceRecordSet == nil {
			return nil, Errorf("InvalidInput", "Invalid request: Missing field 'ResourceRecordSet' in Change %d", i+1)
		}
		x := c.ResourceRecordSet
		if x.Region != "" || x.GeoLocation != nil || x.MultiValue != nil {
			return nil, Errorf("InvalidInput", "awsfake simulates simple, weighted and failover routing only")
		}
		cs = append(cs, rrChange{action: c.Action, rec: x.record()})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	z := r.zones[zoneID]
	if z == nil {
		return nil, noSuchZone(zoneID)
	}
	next, err := applyChanges(z, cs)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	c := &change{id: upperID("C", 19), zone: z, submitted: now, insync: now.Add(r.delay), comment: in.ChangeBatch.Comment, result: next}
	z.records = next
	r.changes[c.id] = c
	// A later change never syncs before an earlier one.
	if n := len(r.pending); n > 0 && c.insync.Before(r.pending[n-1].insync) {
		c.insync = r.pending[n-1].insync
	}
	r.pending = append(r.pending, c)
	r.syncLocked()
	return struct {
		XMLName    xml.Name      `xml:"ChangeResourceRecordSetsResponse"`
		XMLNS      string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}{XMLNS: route53XMLNS, ChangeInfo: r.changeInfo(c)}, nil
}

func (r *Route53) apiGetChange(id string) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	c := r.changes[id]
	if c == nil {
		return nil, statusErrorf(http.StatusNotFound, "NoSuchChange", "A change with the specified change ID does not exist: %s", id)
	}
	return struct {
		XMLName    xml.Name      `xml:"GetChangeResponse"`
		XMLNS      string        `xml:"xmlns,attr"`
		ChangeInfo xmlChangeInfo `xml:"ChangeInfo"`
	}{XMLNS: route53XMLNS, ChangeInfo: r.changeInfo(c)}, nil
}

func (r *Route53) apiGetHostedZone(id string) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	z := r.zones[id]
	if z == nil {
		return nil, noSuchZone(id)
	}
	type hz struct {
		ID              string `xml:"Id"`
		Name            string `xml:"Name"`
		CallerReference string `xml:"CallerReference"`
		PrivateZone     bool   `xml:"Config>PrivateZone"`
		Count           int    `xml:"ResourceRecordSetCount"`
	}
	return struct {
		XMLName     xml.Name `xml:"GetHostedZoneResponse"`
		XMLNS       string   `xml:"xmlns,attr"`
		HostedZone  hz       `xml:"HostedZone"`
		NameServers []string `xml:"DelegationSet>NameServers>NameServer"`
	}{XMLNS: route53XMLNS, HostedZone: hz{"/hostedzone/" + z.id, z.name, "awsfake-" + z.id, false, len(z.records)}, NameServers: z.records[0].Values}, nil
}

func (r *Route53) apiListByName(req *http.Request) (any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	type hz struct {
		ID              string `xml:"Id"`
		Name            string `xml:"Name"`
		CallerReference string `xml:"CallerReference"`
		PrivateZone     bool   `xml:"Config>PrivateZone"`
		Count           int    `xml:"ResourceRecordSetCount"`
	}
	from := ""
	if n := req.URL.Query().Get("dnsname"); n != "" {
		from = fqdn(n)
	}
	var zs []hz
	for _, z := range r.zones {
		if reverseName(z.name) >= reverseName(from) || from == "" {
			zs = append(zs, hz{"/hostedzone/" + z.id, z.name, "awsfake-" + z.id, false, len(z.records)})
		}
	}
	sort.Slice(zs, func(i, j int) bool { return reverseName(zs[i].Name) < reverseName(zs[j].Name) })
	return struct {
		XMLName     xml.Name `xml:"ListHostedZonesByNameResponse"`
		XMLNS       string   `xml:"xmlns,attr"`
		HostedZones []hz     `xml:"HostedZones>HostedZone"`
		IsTruncated bool     `xml:"IsTruncated"`
		MaxItems    int      `xml:"MaxItems"`
	}{XMLNS: route53XMLNS, HostedZones: zs, MaxItems: 100}, nil
}

// reverseName orders names as Route53 lists them: by labels from the right.
func reverseName(n string) string {
	labels := strings.Split(strings.TrimSuffix(n, "."), ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".")
}

func recordLess(a, b Record) bool {
	if ra, rb := reverseName(a.Name), reverseName(b.Name); ra != rb {
		return ra < rb
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	return a.SetIdentifier < b.SetIdentifier
}

func (r *Route53) apiList(zoneID string, req *http.Request) (any, error) {
	q := req.URL.Query()
	name, typ, ident := q.Get("name"), q.Get("type"), q.Get("identifier")
	if typ != "" && name == "" {
		return nil, Errorf("InvalidInput", "The input is not valid: you must specify a name when you specify a type")
	}
	if ident != "" && typ == "" {
		return nil, Errorf("InvalidInput", "The input is not valid: you must specify a type when you specify an identifier")
	}
	max := 300
	if s := q.Get("maxitems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, Errorf("InvalidInput", "The value of maxitems is not valid: %s", s)
		}
		max = min(n, 300)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
	z := r.zones[zoneID]
	if z == nil {
		return nil, noSuchZone(zoneID)
	}
	rs := cloneRecords(z.records)
	sort.Slice(rs, func(i, j int) bool { return recordLess(rs[i], rs[j]) })
	start := Record{Name: fqdn(name), Type: typ, SetIdentifier: ident}
	out := []xmlRRSet{}
	var next *Record
	for _, rr := range rs {
		if name != "" && recordLess(rr, start) {
			continue
		}
		if len(out) == max {
			next = &rr
			break
		}
		out = append(out, xmlOfRecord(rr))
	}
	res := struct {
		XMLName              xml.Name   `xml:"ListResourceRecordSetsResponse"`
		XMLNS                string     `xml:"xmlns,attr"`
		ResourceRecordSets   []xmlRRSet `xml:"ResourceRecordSets>ResourceRecordSet"`
		IsTruncated          bool       `xml:"IsTruncated"`
		NextRecordName       string     `xml:"NextRecordName,omitempty"`
		NextRecordType       string     `xml:"NextRecordType,omitempty"`
		NextRecordIdentifier string     `xml:"NextRecordIdentifier,omitempty"`
		MaxItems             int        `xml:"MaxItems"`
	}{XMLNS: route53XMLNS, ResourceRecordSets: out, MaxItems: max}
	if next != nil {
		res.IsTruncated, res.NextRecordName, res.NextRecordType, res.NextRecordIdentifier = true, next.Name, next.Type, next.SetIdentifier
	}
	return res, nil
}
