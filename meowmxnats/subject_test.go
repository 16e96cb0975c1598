package meowmxnats

import (
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

func TestEncodeToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, out string }{
		{"order-1", "order-1"},
		{"Order_1", "Order_1"},
		{"eu.west/7", "eu%2Ewest%2F7"},
		{"chat noir", "chat%20noir"},
		{"*", "%2A"},
		{">", "%3E"},
		{"50%", "50%25"},
		{"ü", "%C3%BC"},
		{"a\nb", "a%0Ab"},
	} {
		require.Equal(t, tc.out, EncodeToken(tc.in), tc.in)
		back, err := DecodeToken(tc.out)
		require.NoError(t, err)
		require.Equal(t, tc.in, back)
		std, err := url.PathUnescape(tc.out) // what a consumer in another language does
		require.NoError(t, err)
		require.Equal(t, tc.in, std)
	}
}

func TestDecodeTokenRefuses(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a.b", "a b", "*", ">", "%", "%4", "%zz", "%2e", "%41", "a%"} {
		_, err := DecodeToken(bad)
		require.ErrorIs(t, err, ErrBadSubject, "%q", bad)
	}
}

func TestParseSubject(t *testing.T) {
	t.Parallel()
	s := meowmx.StreamID{Type: "order.v2", ID: "eu/7 b"}
	subj := Subject("shop.prod", s)
	require.Equal(t, "shop.prod.order%2Ev2.eu%2F7%20b", subj)
	got, err := ParseSubject("shop.prod", subj)
	require.NoError(t, err)
	require.Equal(t, s, got)
	for _, bad := range []string{"other.a.b", "shop.prod.a", "shop.prod.a.b.c", "shop.prod..b", "shop.prod.a.%2"} {
		_, err := ParseSubject("shop.prod", bad)
		require.ErrorIs(t, err, ErrBadSubject, bad)
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"order-1", "a.b", "ü*>", "%41", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || !utf8.ValidString(s) {
			return
		}
		enc := EncodeToken(s)
		for i := 0; i < len(enc); i++ {
			if !plain(enc[i]) && enc[i] != '%' {
				t.Fatalf("EncodeToken(%q) = %q: byte %q is not safe in a subject", s, enc, enc[i])
			}
		}
		dec, err := DecodeToken(enc)
		if err != nil || dec != s {
			t.Fatalf("DecodeToken(EncodeToken(%q)) = %q, %v", s, dec, err)
		}
	})
}

func TestCovers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, filter string
		want            bool
	}{
		{"meowmx.>", "meowmx.*.*", true},
		{"meowmx.*.*", "meowmx.*.*", true},
		{"meowmx.cat.*", "meowmx.*.*", false},
		{"meowmx.cat.*", "meowmx.cat.*", true},
		{">", "meowmx.*.*", true},
		{"meowmx.*", "meowmx.*.*", false},
		{"other.>", "meowmx.*.*", false},
		{"meowmx.*.>", "meowmx.cat.*", true},
		{"meowmx.>", "meowmx", false},
	} {
		require.Equal(t, tc.want, covers(tc.pattern, tc.filter), "%s covers %s", tc.pattern, tc.filter)
	}
}

func TestConfigRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []*Config{
		{SubjectPrefix: "a.*"}, {SubjectPrefix: "a..b"}, {SubjectPrefix: "a b"}, {SubjectPrefix: "a.>"},
		{BatchSize: -1}, {Window: -1}, {AckTimeout: -1},
	} {
		_, err := c.withDefaults()
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "%+v", c)
	}
	c, err := (*Config)(nil).withDefaults()
	require.NoError(t, err)
	require.Equal(t, "meowmx", c.SubjectPrefix)
	sc := c.streamConfig()
	require.Equal(t, []string{"meowmx.>"}, sc.Subjects)
	require.Equal(t, DuplicatesDefault, sc.Duplicates)
}
