module github.com/costplane/costplane/services/pricing

go 1.26.0

require (
	github.com/costplane/costplane/libs v0.0.0
	github.com/costplane/costplane/proto/gen/go v0.0.0
	github.com/google/go-cmp v0.7.0
	google.golang.org/protobuf v1.36.12
	gopkg.in/yaml.v3 v3.0.1
)

replace (
	github.com/costplane/costplane/libs => ../../libs
	github.com/costplane/costplane/proto/gen/go => ../../proto/gen/go
)
