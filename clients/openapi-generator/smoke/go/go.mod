module example.com/boogu/smoke

go 1.23

require example.com/boogu/boogu-openapi-client-go v0.0.0

require gopkg.in/validator.v2 v2.0.1 // indirect

// The client is generated, not published: build/clients/openapi-generator/go is where
// `python -m tools.openapi_generator go` writes it (clients/openapi-generator/go.yaml).
replace example.com/boogu/boogu-openapi-client-go => ../../../../build/clients/openapi-generator/go
