module github.com/cutover/cutover

go 1.26.8

require (
	go.etcd.io/bbolt v1.4.3
	golang.org/x/term v0.37.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/sys v0.38.0 // indirect
