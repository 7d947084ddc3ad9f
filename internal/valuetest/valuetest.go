// Package valuetest is the fixed scenario of steering on value that the
// tests of the KPI values, the quarterly review, restatements and diff
// expect exact answers from: two value streams in 2026, KPIs with default
// and quarterly targets, an owner change, a team move, a project closed
// with money on it, and an allocation retracted.
package valuetest

// Decisions are the scenario's decisions in the public format, in the
// order they are recorded; every one is taken by p-root under root.
var Decisions = []string{
	`{"id":"bootstrap","by":"p-root","authority":"root","reason":"start","effective":"2026-01-01","changes":[
	 {"kind":"valuestream.define","id":"payments","name":"Payments"},
	 {"kind":"valuestream.define","id":"lending","name":"Lending"},
	 {"kind":"team.form","id":"t-core","name":"Core","type":"stream-aligned"},
	 {"kind":"team.form","id":"t-edge","name":"Edge","type":"platform"},
	 {"kind":"person.join","id":"p-1","name":"Ada","team":"t-core"},
	 {"kind":"product.launch","id":"pay-app","name":"Pay app","valuestream":"payments","owner":"p-1"},
	 {"kind":"team.assign","team":"t-core","product":"pay-app"},
	 {"kind":"budget.open","period":"2026","amount":"1000000.00","currency":"EUR"},
	 {"kind":"funding.allocate","period":"2026","to":"valuestream:payments","amount":"250000.00"}]}`,
	`{"id":"hire-bob","by":"p-root","authority":"root","reason":"the edge serves the app","effective":"2026-02-01","changes":[
	 {"kind":"person.join","id":"p-2","name":"Bob","team":"t-edge"},
	 {"kind":"team.assign","team":"t-edge","product":"pay-app"}]}`,
	`{"id":"kpis","by":"p-root","authority":"root","reason":"steer on value","effective":"2026-01-15","changes":[
	 {"kind":"kpi.define","product":"pay-app","kpi":"conversion","unit":"%","target":"5","direction":"higher","category":"customer"},
	 {"kind":"kpi.define","valuestream":"payments","kpi":"lead-time","unit":"days","target":"10","direction":"lower","category":"flow"}]}`,
	`{"id":"m-conv-q1","by":"p-root","authority":"root","reason":"BI","effective":"2026-03-20","changes":[
	 {"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"3.2","note":"web analytics"}]}`,
	`{"id":"m-lead-q1","by":"p-root","authority":"root","reason":"tracker","effective":"2026-03-31","changes":[
	 {"kind":"kpi.record","valuestream":"payments","kpi":"lead-time","value":"14","unit":"days"}]}`,
	`{"id":"target-q2","by":"p-root","authority":"root","reason":"a realistic step first","effective":"2026-04-01","changes":[
	 {"kind":"kpi.target","product":"pay-app","kpi":"conversion","quarter":"2026-Q2","target":"4"}]}`,
	`{"id":"fund-app","by":"p-root","authority":"root","reason":"fund the product","effective":"2026-04-01","changes":[
	 {"kind":"funding.shift","period":"2026","from":"valuestream:payments","to":"product:pay-app","amount":"100000.00"}]}`,
	`{"id":"start-x","by":"p-root","authority":"root","reason":"explore","effective":"2026-04-01","changes":[
	 {"kind":"project.start","id":"proj-x","name":"X","valuestream":"lending"},
	 {"kind":"funding.allocate","period":"2026","to":"project:proj-x","amount":"50000.00"}]}`,
	`{"id":"hire-cy","by":"p-root","authority":"root","reason":"hire","effective":"2026-04-02","changes":[
	 {"kind":"person.join","id":"p-3","name":"Cy","team":"t-core"}]}`,
	`{"id":"m-conv-apr","by":"p-root","authority":"root","reason":"BI","effective":"2026-04-20","changes":[
	 {"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"3.9"}]}`,
	`{"id":"move-bob","by":"p-root","authority":"root","reason":"one team","effective":"2026-05-01","changes":[
	 {"kind":"person.move","person":"p-2","to":"t-core"}]}`,
	`{"id":"launch-loans","by":"p-root","authority":"root","reason":"a product","effective":"2026-05-01","changes":[
	 {"kind":"product.launch","id":"loans","name":"Loans","valuestream":"lending","owner":"p-1"},
	 {"kind":"funding.allocate","period":"2026","to":"product:loans","amount":"30000.00"}]}`,
	`{"id":"m-conv-may","by":"p-root","authority":"root","reason":"BI","effective":"2026-05-15","changes":[
	 {"kind":"kpi.record","product":"pay-app","kpi":"conversion","value":"4.5"}]}`,
	`{"id":"owner-cy","by":"p-root","authority":"root","reason":"Cy owns the app","effective":"2026-06-01","changes":[
	 {"kind":"product.assign-owner","product":"pay-app","owner":"p-3"}]}`,
	`{"id":"alloc-wrong","by":"p-root","authority":"root","reason":"typo","effective":"2026-06-05","changes":[
	 {"kind":"funding.allocate","period":"2026","to":"product:loans","amount":"20000.00"}]}`,
	`{"id":"close-x","by":"p-root","authority":"root","reason":"done","effective":"2026-06-15","changes":[
	 {"kind":"project.close","project":"proj-x"}]}`,
	`{"id":"release-loans","by":"p-root","authority":"root","reason":"less needed","effective":"2026-06-20","changes":[
	 {"kind":"funding.release","period":"2026","from":"product:loans","amount":"5000.00"}]}`,
	`{"id":"undo-wrong","by":"p-root","authority":"root","reason":"it was a typo","effective":"2026-06-25","changes":[
	 {"kind":"decision.retract","decision":"alloc-wrong"}]}`,
	`{"id":"m-lead-q2","by":"p-root","authority":"root","reason":"tracker","effective":"2026-06-30","changes":[
	 {"kind":"kpi.record","valuestream":"payments","kpi":"lead-time","value":"12"}]}`,
}
