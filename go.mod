module github.com/outflow-sensor/outflow

go 1.26.8

require (
	github.com/VictoriaMetrics/fastcache v1.13.0
	github.com/dreadl0ck/ja3 v1.0.0
	github.com/dreadl0ck/tlsx v0.0.0-20200303221230-8cb859306e07
	github.com/google/gopacket v1.1.19
	github.com/netsampler/goflow2/v2 v2.2.6
	github.com/schollz/progressbar/v3 v3.19.1
	golang.org/x/net v0.43.0
	golang.org/x/sys v0.49.0
	golang.org/x/term v0.47.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/golang/snappy v1.0.0 // indirect
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
	github.com/valyala/fastjson v1.6.10 // indirect
	golang.org/x/crypto v0.41.0 // indirect
)
