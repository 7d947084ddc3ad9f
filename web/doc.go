// Package web is Koers' web app: the read models for people who would
// rather look than read. `koers serve` serves it at / beside the JSON API,
// in the same process and with the same tokens.
//
// Pages are rendered on the server with html/template; a little JavaScript
// (htmx, for the date controls and the search, and a static script of our
// own) and Apache ECharts (the Sankey and the transition charts) are
// embedded in the binary, so the app works offline and needs no build step.
//
// The pages:
//
//   - / — the organisation explorer: value streams → products (owner by
//     name) → teams → people, as of a date and as known at a time, with a
//     search by name;
//   - /valuestreams/{id}, /products/{id}, /teams/{id}, /people/{id},
//     /projects/{id}, /mandates/{id} — one aggregate: what it is as of the
//     date, and its history as a timeline, every change linked to its
//     decision;
//   - /decisions — the audit, filterable and paged; /decisions/{id} — one
//     decision: who, on whose authority (the mandate chain), why, its refs,
//     times, changes and events, and what retracted it;
//   - /funding/{period} — a Sankey of the period's money as of a date (the
//     budget → pool and value streams → products and projects), the
//     balances, and /funding/{period}/journal the journal of one account;
//   - /transition — the quarterly transition metrics as charts and a table;
//   - /compare — the organisation on two dates and what changed between.
//
// Security: a Content-Security-Policy that allows no inline script (chart
// data comes from JSON endpoints of the same origin), no request to any
// other host, CSRF protection on every POST (a token in the form and the
// browser's Sec-Fetch-Site/Origin checked), and, when the server has
// tokens, a login form that takes a token once and answers with a session
// cookie (HttpOnly, SameSite=Strict): tokens never travel in URLs. The app
// only reads: deciding stays with the API and the CLI.
package web
