-- +goose Up
-- Queries as of a valid time and known at a sequence ask for the rows whose
-- two intervals both contain the point: a GiST index over both ranges finds
-- them without reading the whole history. A rebuild builds it once at
-- the end instead of row by row (the marker below; see rebuild.go).
-- +koers deferred-by-rebuild
CREATE INDEX facts_bitemporal ON facts USING gist (
    tstzrange(valid_from, valid_to, '[)'),
    int8range(recorded_seq, superseded_seq, '[)'));

-- +goose Down
DROP INDEX facts_bitemporal;
