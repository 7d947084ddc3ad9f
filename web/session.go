package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	sessionCookie = "koers_session"
	csrfCookie    = "koers_csrf" // the login form's, before there is a session
	// maxFormBytes bounds a login or logout body.
	maxFormBytes = 4 << 10
)

// viewer is who is looking: with tokens, the actor of the session.
type viewer struct {
	Actor string
	CSRF  string // the session's token for forms that post
	Login bool   // the server has tokens: there is a login and a logout
}

type viewerKey struct{}

type session struct {
	actor   string
	csrf    string
	expires time.Time
	created time.Time
}

// sessions are held in memory by the hash of their id: a restart logs
// everyone out, which is fine for a read-only app.
type sessions struct {
	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session
	ttl  time.Duration
	max  int
	now  func() time.Time
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{byID: map[[sha256.Size]byte]*session{}, ttl: ttl, max: max, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux; it panics otherwise
	return base64.RawURLEncoding.EncodeToString(b)
}

// start makes a session for actor and returns its id.
func (ss *sessions) start(actor string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.byID) >= ss.max {
		// Drop the expired ones, then the oldest, so the map stays bounded.
		var oldestKey [sha256.Size]byte
		var oldest time.Time
		for k, s := range ss.byID {
			if !now.Before(s.expires) {
				delete(ss.byID, k)
				continue
			}
			if oldest.IsZero() || s.created.Before(oldest) {
				oldest, oldestKey = s.created, k
			}
		}
		if len(ss.byID) >= ss.max {
			delete(ss.byID, oldestKey)
		}
	}
	id := randomToken()
	ss.byID[sha256.Sum256([]byte(id))] = &session{actor: actor, csrf: randomToken(), expires: now.Add(ss.ttl), created: now}
	return id
}

func (ss *sessions) get(id string) (session, bool) {
	if id == "" || len(id) > 100 {
		return session{}, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	k := sha256.Sum256([]byte(id))
	s, ok := ss.byID[k]
	if !ok {
		return session{}, false
	}
	if !ss.now().Before(s.expires) {
		delete(ss.byID, k)
		return session{}, false
	}
	return *s, true
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, sha256.Sum256([]byte(id)))
}

// viewer returns who the request comes from.
func (s *server) viewer(r *http.Request) viewer {
	if s.cfg.Tokens == nil {
		return viewer{}
	}
	v := viewer{Login: true}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if sess, ok := s.sessions.get(c.Value); ok {
			v.Actor, v.CSRF = sess.actor, sess.csrf
		}
	}
	return v
}

// toLogin sends a request without a session to the login form, which
// sends it back afterwards.
func (s *server) toLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Header.Get("HX-Request") == "true" || strings.HasSuffix(r.URL.Path, ".json") {
		return &httpError{status: http.StatusUnauthorized, msg: "log in first"}
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return nil
}

// localPath keeps a "next" that stays on this site; anything else is /.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || len(next) > 2000 {
		return "/"
	}
	return next
}

type loginData struct {
	Next    string
	CSRF    string
	Problem string
	Open    bool // no tokens: nothing to log in to
}

func (s *server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

func (s *server) loginForm(w http.ResponseWriter, r *http.Request) error {
	d := loginData{Next: localPath(r.URL.Query().Get("next")), Open: s.cfg.Tokens == nil}
	if !d.Open {
		d.CSRF = randomToken()
		s.setCookie(w, r, csrfCookie, d.CSRF, time.Hour)
	}
	return s.render(w, r, http.StatusOK, "login", "Log in", d)
}

// login takes a token from the form (never from the URL), and answers with
// a session cookie.
func (s *server) login(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Tokens == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return badRequest("the login form could not be read: %v", err)
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || !sameSecret(c.Value, r.PostForm.Get("csrf")) {
		return &httpError{status: http.StatusForbidden, msg: "the login form expired or came from elsewhere: open the login page again"}
	}
	next := localPath(r.PostForm.Get("next"))
	actor, ok := s.cfg.Tokens.Actor(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		d := loginData{Next: next, CSRF: randomToken(), Problem: "That token is not known here."}
		s.setCookie(w, r, csrfCookie, d.CSRF, time.Hour)
		return s.render(w, r, http.StatusUnauthorized, "login", "Log in", d)
	}
	s.setCookie(w, r, csrfCookie, "", -time.Second)
	s.setCookie(w, r, sessionCookie, s.sessions.start(actor), s.cfg.SessionTTL)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return badRequest("the logout form could not be read: %v", err)
	}
	v := s.viewer(r)
	if v.Actor != "" {
		if !sameSecret(v.CSRF, r.PostForm.Get("csrf")) {
			return &httpError{status: http.StatusForbidden, msg: "the logout form came from elsewhere"}
		}
		if c, err := r.Cookie(sessionCookie); err == nil {
			s.sessions.end(c.Value)
		}
	}
	s.setCookie(w, r, sessionCookie, "", -time.Second)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
