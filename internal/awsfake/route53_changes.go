package awsfake

import (
	"fmt"
	"net"
	"reflect"
	"strings"
)

var recordTypes = map[string]bool{"A": true, "AAAA": true, "CAA": true, "CNAME": true, "DS": true, "MX": true, "NAPTR": true,
	"NS": true, "PTR": true, "SOA": true, "SPF": true, "SRV": true, "TXT": true}

// describe names a record set the way Route53's messages do.
func describe(rec Record) string {
	id := "null"
	if rec.SetIdentifier != "" {
		id = "'" + rec.SetIdentifier + "'"
	}
	return fmt.Sprintf("[name='%s', type='%s', set-identifier=%s]", rec.Name, rec.Type, id)
}

// checkShape validates one record set's fields (Route53's InvalidInput).
func checkShape(z *zone, action string, rec *Record) *APIError {
	where := fmt.Sprintf("Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=%s]", action, rec.Name, rec.Type, orNull(rec.SetIdentifier))
	switch action {
	case "CREATE", "UPSERT", "DELETE":
	default:
		return Errorf("InvalidInput", "Invalid request: Value '%s' at 'action' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, DELETE, UPSERT]", action)
	}
	if rec.Name == "" {
		return Errorf("InvalidInput", "Invalid request: Missing field 'Name' in %s", where)
	}
	rec.Name = fqdn(rec.Name)
	if !recordTypes[rec.Type] {
		return Errorf("InvalidInput", "Invalid request: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set", rec.Type)
	}
	weighted, failover := rec.Weight != nil, rec.Failover != ""
	if weighted && failover {
		return Errorf("InvalidInput", "Invalid request: Expected exactly one of [Weight, Region, Failover, GeoLocation, MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found more than one in %s", where)
	}
	if (weighted || failover) && rec.SetIdentifier == "" {
		return Errorf("InvalidInput", "Invalid request: Missing field 'SetIdentifier' in %s", where)
	}
	if rec.SetIdentifier != "" && !weighted && !failover {
		return Errorf("InvalidInput", "Invalid request: Expected exactly one of [Weight, Region, Failover, GeoLocation, MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found none in %s", where)
	}
	if len(rec.SetIdentifier) > 128 {
		return Errorf("InvalidInput", "Invalid request: SetIdentifier is longer than 128 characters in %s", where)
	}
	if weighted && (*rec.Weight < 0 || *rec.Weight > 255) {
		return Errorf("InvalidInput", "Invalid request: Value '%d' at 'weight' failed to satisfy constraint: Member must have value between 0 and 255", *rec.Weight)
	}
	if failover && rec.Failover != "PRIMARY" && rec.Failover != "SECONDARY" {
		return Errorf("InvalidInput", "Invalid request: Value '%s' at 'failover' failed to satisfy constraint: Member must satisfy enum value set: [PRIMARY, SECONDARY]", rec.Failover)
	}
	if rec.Alias != nil {
		if rec.TTL != nil || len(rec.Values) > 0 {
			return Errorf("InvalidInput", "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]], but found more than one in %s", where)
		}
		if rec.Alias.DNSName == "" || rec.Alias.HostedZoneID == "" {
			return Errorf("InvalidInput", "Invalid request: Missing field 'DNSName' or 'HostedZoneId' in AliasTarget of %s", where)
		}
		rec.Alias.DNSName = fqdn(rec.Alias.DNSName)
		return nil
	}
	if rec.TTL == nil || len(rec.Values) == 0 {
		return Errorf("InvalidInput", "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords]], but found none in %s", where)
	}
	if *rec.TTL < 0 || *rec.TTL > 2147483647 {
		return Errorf("InvalidInput", "Invalid request: Value '%d' at 'TTL' failed to satisfy constraint", *rec.TTL)
	}
	return nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// checkSemantics validates a record set against the zone it would join
// (Route53's InvalidChangeBatch messages).
func checkSemantics(z *zone, rec Record) string {
	if rec.Name != z.name && !strings.HasSuffix(rec.Name, "."+z.name) {
		return fmt.Sprintf("RRSet with DNS name %s is not permitted in zone %s", rec.Name, z.name)
	}
	switch rec.Type {
	case "A":
		for _, v := range rec.Values {
			if ip := net.ParseIP(v); ip == nil || ip.To4() == nil {
				return fmt.Sprintf("ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '%s'", v)
			}
		}
	case "CNAME":
		if rec.Name == z.name {
			return fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted at apex in zone %s", rec.Name, z.name)
		}
		if len(rec.Values) > 1 {
			return fmt.Sprintf("RRSet of type CNAME with DNS name %s is not permitted because a CNAME record set can have only one value", rec.Name)
		}
	}
	for _, other := range z.records {
		if other.Name != rec.Name {
			continue
		}
		if other.Type != rec.Type && (other.Type == "CNAME" || rec.Type == "CNAME") {
			return fmt.Sprintf("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet of type %s with the same DNS name already exists in zone %s", rec.Type, rec.Name, other.Type, z.name)
		}
		if other.Type != rec.Type || other.SetIdentifier == rec.SetIdentifier {
			continue
		}
		switch {
		case other.SetIdentifier == "" || rec.SetIdentifier == "":
			return fmt.Sprintf("RRSet with DNS name %s, type %s cannot be created because a non-routing-policy record set exists with the same name and type (or the reverse)", rec.Name, rec.Type)
		case (other.Weight != nil) != (rec.Weight != nil):
			return fmt.Sprintf("RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created because a record set with the same name and type uses a different routing policy", rec.Name, rec.Type, rec.SetIdentifier)
		case rec.Failover != "" && other.Failover == rec.Failover:
			return fmt.Sprintf("RRSet with DNS name %s, type %s cannot have two %s failover record sets", rec.Name, rec.Type, rec.Failover)
		}
	}
	return ""
}

func sameSet(a, b Record) bool {
	return a.Name == b.Name && a.Type == b.Type && a.SetIdentifier == b.SetIdentifier
}

// applyChanges validates a batch and returns the zone's records after it;
// the batch applies in full or not at all.
func applyChanges(z *zone, cs []rrChange) ([]Record, error) {
	for i := range cs {
		if e := checkShape(z, cs[i].action, &cs[i].rec); e != nil {
			return nil, e
		}
	}
	for i := range cs {
		for j := i + 1; j < len(cs); j++ {
			if sameSet(cs[i].rec, cs[j].rec) {
				return nil, &APIError{Status: 400, Code: "InvalidChangeBatch", Message: "ChangeBatch errors occurred",
					Messages: []string{fmt.Sprintf("The request contains an invalid set of changes for a resource record set '%s %s'", cs[i].rec.Type, cs[i].rec.Name)}}
			}
		}
	}
	work := &zone{id: z.id, name: z.name, records: cloneRecords(z.records)}
	var msgs []string
	for _, c := range cs {
		idx := -1
		for i, rr := range work.records {
			if sameSet(rr, c.rec) {
				idx = i
			}
		}
		switch c.action {
		case "CREATE", "UPSERT":
			if c.action == "CREATE" && idx >= 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", describe(c.rec)))
				continue
			}
			if (c.rec.Type == "SOA" || c.rec.Type == "NS") && c.rec.Name == z.name && idx < 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to create resource record set %s but it already exists", describe(c.rec)))
				continue
			}
			rest := &zone{id: work.id, name: work.name}
			for i, rr := range work.records {
				if i != idx {
					rest.records = append(rest.records, rr)
				}
			}
			if m := checkSemantics(rest, c.rec); m != "" {
				msgs = append(msgs, m)
				continue
			}
			work.records = append(rest.records, c.rec)
		case "DELETE":
			if idx < 0 {
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but it was not found", describe(c.rec)))
				continue
			}
			if !reflect.DeepEqual(normalized(work.records[idx]), normalized(c.rec)) {
				msgs = append(msgs, fmt.Sprintf("Tried to delete resource record set %s but the values provided do not match the current values", describe(c.rec)))
				continue
			}
			if (c.rec.Type == "SOA" || c.rec.Type == "NS") && c.rec.Name == z.name {
				msgs = append(msgs, fmt.Sprintf("A HostedZone must contain at least one NS record and one SOA record for the zone itself (%s)", describe(c.rec)))
				continue
			}
			work.records = append(work.records[:idx], work.records[idx+1:]...)
		}
	}
	if len(msgs) > 0 {
		return nil, &APIError{Status: 400, Code: "InvalidChangeBatch", Message: "ChangeBatch errors occurred", Messages: msgs}
	}
	return work.records, nil
}

// normalized drops the differences Route53 ignores when it matches a DELETE.
func normalized(r Record) Record {
	r.Values = append([]string(nil), r.Values...)
	if len(r.Values) == 0 {
		r.Values = nil
	}
	return r
}
