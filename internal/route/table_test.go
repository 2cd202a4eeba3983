package route

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func pool(version string, prefix string, n int) PoolSpec {
	p := PoolSpec{Version: version}
	for i := range n {
		p.Instances = append(p.Instances, NewInstance(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("127.0.0.1:%d", 1000+i+len(prefix)*100), nil))
	}
	return p
}

func twoPools(live Color, weight float64) Spec {
	s := Spec{Live: live, Weight: weight}
	s.Pools[Blue] = pool("v1", "b", 3)
	s.Pools[Green] = pool("v2", "gg", 3)
	return s
}

func TestBuildRejects(t *testing.T) {
	a := NewInstance("a", "127.0.0.1:1", nil)
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"negative weight", Spec{Weight: -1}, "candidate weight"},
		{"weight above 100", Spec{Weight: 100.5}, "candidate weight"},
		{"NaN weight", Spec{Weight: math.NaN()}, "candidate weight"},
		{"infinite weight", Spec{Weight: math.Inf(1)}, "candidate weight"},
		{"bad colour", Spec{Live: 7}, "live colour"},
		{"nil instance", Spec{Pools: [2]PoolSpec{{Version: "v1", Instances: []*Instance{nil}}}}, "is nil"},
		{"empty id", Spec{Pools: [2]PoolSpec{{Version: "v1", Instances: []*Instance{NewInstance("", "x:1", nil)}}}}, "empty id"},
		{"no version", Spec{Pools: [2]PoolSpec{{Instances: []*Instance{a}}}}, "without a version"},
		{"duplicate id across pools", Spec{Pools: [2]PoolSpec{
			{Version: "v1", Instances: []*Instance{a}},
			{Version: "v2", Instances: []*Instance{NewInstance("a", "127.0.0.1:2", nil)}}}}, "duplicate instance id"},
		{"duplicate addr in a pool", Spec{Pools: [2]PoolSpec{
			{Version: "v1", Instances: []*Instance{a, NewInstance("b", "127.0.0.1:1", nil)}}}}, "already used"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Build(twoPools(Green, 12.34)); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	same := Spec{Pools: [2]PoolSpec{
		{Version: "v1", Instances: []*Instance{a}},
		{Version: "v1", Instances: []*Instance{NewInstance("a-green", "127.0.0.1:1", nil)}}}}
	if _, err := Build(same); err != nil {
		t.Fatalf("same address in both pools rejected: %v", err)
	}
}

func TestPickSplitsByWeight(t *testing.T) {
	for _, w := range []float64{0, 10, 33.3, 50, 90, 100} {
		tb, err := Build(twoPools(Blue, w))
		if err != nil {
			t.Fatal(err)
		}
		const n = 20000
		var green int
		now := time.Now().UnixNano()
		for range n {
			_, c := tb.Pick(rand.Uint32(), rand.Uint64(), now)
			if c == Green {
				green++
			}
		}
		got := float64(green) * 100 / n
		if math.Abs(got-w) > 1.5 {
			t.Errorf("weight %v: candidate got %.2f%% of picks", w, got)
		}
	}
}

func TestStickinessIsMonotonic(t *testing.T) {
	var prev *Table
	for _, w := range []float64{0, 0.01, 1, 10, 25.5, 50, 99.99, 100} {
		tb, err := Build(twoPools(Blue, w))
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil {
			for b := uint32(0); b < Buckets; b++ {
				if prev.ColorFor(b) == Green && tb.ColorFor(b) != Green {
					t.Fatalf("bucket %d left the candidate when weight rose from %v to %v", b, prev.Weight(), w)
				}
			}
		}
		var green int
		for b := uint32(0); b < Buckets; b++ {
			if tb.ColorFor(b) == Green {
				green++
			}
		}
		if want := int(math.Round(w * 100)); green != want {
			t.Errorf("weight %v: %d candidate buckets, want %d", w, green, want)
		}
		prev = tb
	}
}

func TestPickNeverChoosesUnhealthyColour(t *testing.T) {
	s := twoPools(Blue, 90)
	for _, in := range s.Pools[Green].Instances {
		in.SetHealthy(false)
	}
	tb, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	for range 5000 {
		in, c := tb.Pick(rand.Uint32(), rand.Uint64(), now)
		if c != Blue || in == nil || !in.Healthy() {
			t.Fatalf("picked %v in %s with green down", in, c)
		}
	}
	if in := tb.PickIn(Green, 1, now); in != nil {
		t.Fatalf("preview picked unhealthy %s", in.ID)
	}
	for _, in := range s.Pools[Blue].Instances {
		in.SetHealthy(false)
	}
	if in, _ := tb.Pick(1, 1, now); in != nil {
		t.Fatalf("picked %s with every instance down", in.ID)
	}
}

func TestPickPrefersUnejectedAndDisabled(t *testing.T) {
	s := twoPools(Blue, 0)
	now := time.Now()
	for _, in := range s.Pools[Blue].Instances[:2] {
		in.Eject(now.Add(time.Minute))
	}
	tb, _ := Build(s)
	for range 1000 {
		in, c := tb.Pick(rand.Uint32(), rand.Uint64(), now.UnixNano())
		if in != s.Pools[Blue].Instances[2] || c != Blue {
			t.Fatalf("picked %s (%s), want the only unejected blue instance", in.ID, c)
		}
	}
	s.Pools[Blue].Instances[2].Eject(now.Add(time.Minute))
	tb, _ = Build(s)
	if _, c := tb.Pick(5, 5, now.UnixNano()); c != Green {
		t.Fatalf("all blue ejected: picked %s, want green", c)
	}
	s.Pools[Green].Disabled = true
	tb, _ = Build(s)
	if in, c := tb.Pick(5, 5, now.UnixNano()); in == nil || c != Blue {
		t.Fatalf("green disabled, blue ejected: got %v %s, want an ejected blue instance as last resort", in, c)
	}
	if tb.PickIn(Green, 1, now.UnixNano()) != nil || tb.Contains(s.Pools[Green].Instances[0]) {
		t.Fatal("disabled pool still selectable")
	}
	s.Pools[Blue].Instances[0].SetHealthy(true)
	if s.Pools[Blue].Instances[0].Ejected(now) {
		t.Fatal("a healthy verdict did not end the ejection")
	}
}

func TestPickBalancesLeastOutstanding(t *testing.T) {
	s := twoPools(Blue, 0)
	busy := s.Pools[Blue].Instances[0]
	for range 100 {
		busy.Acquire()
	}
	tb, _ := Build(s)
	now := time.Now().UnixNano()
	counts := map[*Instance]int{}
	for range 3000 {
		in, _ := tb.Pick(rand.Uint32(), rand.Uint64(), now)
		counts[in]++
	}
	if counts[busy] != 0 {
		t.Fatalf("busy instance chosen %d times; p2c should always prefer the idle one it is paired with", counts[busy])
	}
	for _, in := range s.Pools[Blue].Instances[1:] {
		if counts[in] < 1200 {
			t.Fatalf("instance %s got %d of 3000 picks: unbalanced", in.ID, counts[in])
		}
	}
}

func TestRetryAvoidsFailed(t *testing.T) {
	s := twoPools(Blue, 0)
	s.Pools[Blue].Instances = s.Pools[Blue].Instances[:1]
	tb, _ := Build(s)
	failed := s.Pools[Blue].Instances[0]
	now := time.Now().UnixNano()
	if in, _ := tb.Retry(failed, Blue, false, 1, now); in != nil {
		t.Fatalf("retry within blue returned %s", in.ID)
	}
	if in, c := tb.Retry(failed, Blue, true, 1, now); in == nil || c != Green {
		t.Fatalf("retry across colours = %v %s, want green", in, c)
	}
}

func FuzzBuild(f *testing.F) {
	f.Add(uint8(0), 10.0, "a,b,c", "d,e", false, uint32(42))
	f.Add(uint8(1), 100.0, "a", "a", true, uint32(9999))
	f.Add(uint8(3), math.NaN(), "", ",", false, uint32(0))
	f.Fuzz(func(t *testing.T, live uint8, weight float64, blue, green string, down bool, bucket uint32) {
		spec := Spec{Live: Color(live), Weight: weight}
		for c, ids := range [2]string{blue, green} {
			spec.Pools[c].Version = "v"
			for id := range strings.SplitSeq(ids, ",") {
				in := NewInstance(id, "addr-"+id, nil)
				in.SetHealthy(!down || c == 0)
				spec.Pools[c].Instances = append(spec.Pools[c].Instances, in)
			}
		}
		tb, err := Build(spec)
		if err != nil {
			return
		}
		if !(tb.Weight() >= 0 && tb.Weight() <= 100) || tb.Live() > Green {
			t.Fatalf("accepted weight %v live %d", tb.Weight(), tb.Live())
		}
		seen := map[string]bool{}
		for _, c := range Colors {
			for _, in := range tb.Pool(c).Instances {
				if seen[in.ID] {
					t.Fatalf("duplicate id %q accepted", in.ID)
				}
				seen[in.ID] = true
			}
		}
		in, c := tb.Pick(bucket, uint64(bucket)*0x9e3779b97f4a7c15, 0)
		if in == nil {
			t.Fatal("no instance picked though blue is healthy")
		}
		if !in.Healthy() || tb.Pool(c).Instances == nil {
			t.Fatalf("picked unhealthy %q in %s", in.ID, c)
		}
		if weight == 0 && c != tb.Live() && tb.Pool(tb.Live()).Instances[0].Healthy() {
			t.Fatalf("weight 0 routed to the candidate")
		}
	})
}

func BenchmarkPick(b *testing.B) {
	tb, err := Build(twoPools(Blue, 10))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	var i uint32
	b.ReportAllocs()
	for b.Loop() {
		i++
		in, _ := tb.Pick(Bucket("abcdef0123456789")+i, rand.Uint64(), now)
		if in == nil {
			b.Fatal("nil")
		}
	}
}

func TestPreviewColour(t *testing.T) {
	s := twoPools(Blue, 0)
	tb, _ := Build(s)
	if tb.Preview() != Green {
		t.Fatalf("unset preview = %s, want the candidate (green)", tb.Preview())
	}
	s.Preview, s.PreviewSet = Blue, true // first deployment: candidate blue, live blue
	tb, _ = Build(s)
	if tb.Preview() != Blue || tb.PickIn(tb.Preview(), 1, 0) == nil {
		t.Fatalf("preview = %s, want blue and selectable", tb.Preview())
	}
	s.Preview = 5
	if _, err := Build(s); err == nil || !strings.Contains(err.Error(), "preview colour") {
		t.Fatalf("Build with preview colour 5: %v, want an error", err)
	}
}
