// Package communityid computes Community ID v1 flow hashes
// (https://github.com/corelight/community-id-spec).
//
// Zeek, Suricata, Arkime, Elastic and most SIEMs can tag a flow with the same
// Community ID, so emitting it lets an analyst join Outflow's records with
// theirs by a plain string match instead of re-deriving direction-dependent
// 5-tuples in every query.
//
// The ID is only useful if it matches other tools bit for bit, so the quirks
// of the spec are kept as they are: ICMP and ICMPv6 type/code are folded into
// port equivalents the way Zeek does it, and one-way ICMP messages (errors,
// unpaired types) keep their direction instead of being put in canonical
// order.
//
// Addresses are raw bytes and must be 4 bytes for IPv4: an IPv4-mapped IPv6
// address (::ffff:a.b.c.d) hashes differently from the same IPv4 address.
package communityid
