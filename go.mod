module github.com/cometgate/cometgate

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.3
	go.yaml.in/yaml/v3 v3.0.6
)
