package awsfake

import (
	"fmt"
	"testing"
)

func TestQueryListsInNumericOrder(t *testing.T) {
	body := "Action=X&Names.member.10=j&Names.member.2=b&Names.member.1=a&Ids.2=y&Ids.1=x&T.member.1.Id=i&T.member.1.Port=80"
	for i := 3; i <= 9; i++ {
		body += fmt.Sprintf("&Names.member.%d=%c", i, 'a'+i-1)
	}
	q, err := parseQuery([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(q.Strings("Names")); got != "[a b c d e f g h i j]" {
		t.Errorf("Strings = %s", got)
	}
	if got := fmt.Sprint(q.EC2Strings("Ids")); got != "[x y]" {
		t.Errorf("EC2Strings = %s", got)
	}
	if ms := q.Members("T"); len(ms) != 1 || q.Get(ms[0]+".Port") != "80" {
		t.Errorf("Members = %v", ms)
	}
	if _, err := parseQuery([]byte("Version=1")); err == nil {
		t.Error("a body without Action parsed")
	}
}

func TestMarshalInner(t *testing.T) {
	got, err := marshalInner(struct {
		Names []string `xml:"Names>member"`
		N     int      `xml:"N"`
	}{[]string{"a", "b"}, 3})
	if err != nil || got != "<Names><member>a</member><member>b</member></Names><N>3</N>" {
		t.Errorf("marshalInner = %q, %v", got, err)
	}
}
