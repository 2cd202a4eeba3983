package config

import (
	"reflect"
	"testing"
)

// Settings names every field of Service but its name, each once: a field
// added without a key would escape a reload's diff.
func TestSettingsCoverEveryField(t *testing.T) {
	s := &Service{}
	typ := reflect.TypeFor[Service]()
	if got, want := len(s.Settings()), typ.NumField()-1; got != want {
		t.Fatalf("Settings has %d keys, Service %d fields besides Name", got, want)
	}
	seen := map[string]bool{}
	for _, kv := range s.Settings() {
		if seen[kv.Key] {
			t.Errorf("key %s listed twice", kv.Key)
		}
		seen[kv.Key] = true
	}
	// Each key carries its own field: changing one field changes one value.
	v := reflect.ValueOf(s).Elem()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Name == "Name" {
			continue
		}
		before := s.Settings()
		v.Field(i).Set(nonZero(f.Type))
		after := s.Settings()
		changed := 0
		for j := range before {
			if !reflect.DeepEqual(before[j].Value, after[j].Value) {
				changed++
			}
		}
		if changed != 1 {
			t.Errorf("setting Service.%s changed %d keys, want 1", f.Name, changed)
		}
	}
}

// nonZero returns a value of t that is not its zero value.
func nonZero(t reflect.Type) reflect.Value {
	switch t.Kind() {
	case reflect.Pointer:
		return reflect.New(t.Elem())
	case reflect.Slice:
		return reflect.MakeSlice(t, 1, 1)
	case reflect.String:
		return reflect.ValueOf("x").Convert(t)
	case reflect.Bool:
		return reflect.ValueOf(true)
	case reflect.Struct:
		v := reflect.New(t).Elem()
		for i := range t.NumField() {
			if v.Field(i).CanSet() {
				v.Field(i).Set(nonZero(t.Field(i).Type))
				return v
			}
		}
		return v
	case reflect.Map:
		return reflect.MakeMap(t)
	default:
		return reflect.ValueOf(1).Convert(t)
	}
}
