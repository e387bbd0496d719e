// Package eherkenning is the SAML service provider (Dienstverlener) for
// eHerkenning, the Dutch business-identity scheme, as profiled by the
// Afsprakenstelsel Elektronische Toegangsdiensten (interface 1.13).
//
// The package knows nothing of Caddy or of accounts. It
//
//   - loads the broker's (Herkenningsmakelaar's) metadata and keeps it fresh
//     (see [MetadataSource]);
//   - builds signed AuthnRequests ([ServiceProvider.StartLogin]) and tracks
//     them server-side through a [StateStore];
//   - resolves SAMLart artifacts over SOAP and accepts HTTP-POST
//     SAMLResponses ([ServiceProvider.HandleResponse]), verifies every
//     signature against the broker metadata (keys picked by KeyName, SHA-1
//     refused), checks issuer, destination, recipient, audience, time,
//     level of assurance, ServiceID/ServiceUUID and replay, and decrypts the
//     EncryptedID (or EncryptedAttribute) identifiers from the very element
//     whose signature was verified;
//   - generates our signed SP metadata ([ServiceProvider.Metadata]) and the
//     signed dienstcatalogus entry ([ServiceProvider.ServiceCatalogue]).
//
// crewjam/saml is not used for the message handling: it cannot select a key
// by KeyName, does not model EncryptedID or Advice, and would have to be
// worked around at every step of this profile. The package builds on
// beevik/etree and russellhaering/goxmldsig directly; XML Encryption is
// implemented here on the standard library's primitives.
//
// Every failure of [ServiceProvider.HandleResponse] is an [*Error] carrying a
// machine [Code] for the page shown to the person and a private detail for
// the operator's log.
package eherkenning
