// Package catalog holds costplane's list-price book: one reviewed YAML file
// per provider under data/, embedded in the binary and indexed at load so
// that pricing an event does no parsing and builds no maps.
//
// Rules the data and the code share (the file header in data/README.md says
// the same for reviewers):
//
//   - Prices are decimal strings per one million units, parsed straight into
//     integer nano-units. Floats never touch a price.
//   - Token buckets do not overlap (DESIGN §3): input is uncached input only,
//     output excludes reasoning.
//   - Reasoning tokens are billed at the output rate unless a row names a
//     reasoning price of its own. The loader writes the output price into
//     the reasoning slot, so the rule is applied once, visibly, at load.
//   - A row's validity is [effective_from, effective_to): from is inclusive,
//     to is exclusive, either may be open. An event is priced by the row
//     valid at its start_time.
//   - regions empty means the provider publishes one price for every region;
//     only then may an event from any region fall back to the row.
//   - profile empty means the row applies to every inference profile, except
//     that a model's profile_premium_bp raises the price for the profiles it
//     names (Bedrock and Vertex regional endpoints of newer Claude models).
//   - tier is standard unless named. A tier without an explicit row is
//     priced by a documented multiplier on the standard row
//     (tier_multiplier_bp, on the provider or the model), applied to token
//     kinds only, never to per-call fees.
//   - long_context prices replace the base prices of every token kind of a
//     request whose prompt is larger than threshold_tokens (per-call fees
//     keep the base row's price). The prompt is
//     input + cache_read + cache_write_5m + cache_write_1h + input_audio +
//     input_image: every token the request sends, cached or not.
package catalog
