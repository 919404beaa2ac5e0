// Package openapi embeds the OpenAPI document generated for the whole
// costplane REST API.
package openapi

import _ "embed"

// Document is the merged OpenAPI (Swagger 2.0) document in JSON.
//
//go:embed costplane.swagger.json
var Document []byte
