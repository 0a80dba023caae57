/* The only place kyso touches OpenSSL: digests, PKCS#1 / PSS / OAEP encoding
 * and checking, ECDSA signature formats, public keys and certificates,
 * symmetric ciphers for card protocols, randomness and wiping. */
#ifndef KYSO_CRYPTO_H
#define KYSO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "kyso/pkcs11.h"

/* --- digests (CKM_SHA_1, CKM_SHA224 ... CKM_SHA512) --------------------- */
struct kyso_digest; /* opaque */
/* Size in bytes of the hash of a digest mechanism, 0 if not one. */
size_t kyso_digest_size(CK_MECHANISM_TYPE hash);
CK_RV kyso_digest_new(CK_MECHANISM_TYPE hash, struct kyso_digest **out);
CK_RV kyso_digest_update(struct kyso_digest *d, const uint8_t *p, size_t n);
/* Writes the hash (kyso_digest_size bytes) and frees d. */
CK_RV kyso_digest_final(struct kyso_digest *d, uint8_t *out);
void kyso_digest_free(struct kyso_digest *d);
CK_RV kyso_digest_once(CK_MECHANISM_TYPE hash, const uint8_t *p, size_t n,
		       uint8_t *out);
/* The hash mechanism of a CKG_MGF1_* value, or CKM_VENDOR_DEFINED if none. */
CK_MECHANISM_TYPE kyso_mgf_hash(CK_RSA_PKCS_MGF_TYPE mgf);

/* --- RSA encodings over a raw (modulus-sized) operation ----------------- */
/* EMSA-PKCS1-v1_5: DigestInfo(hash) for a hash mechanism. */
CK_RV kyso_digestinfo(CK_MECHANISM_TYPE hash, const uint8_t *h, size_t hlen,
		      uint8_t *out, size_t cap, size_t *outlen);
/* Block type 1 padding of in (already a DigestInfo or raw data) to k bytes. */
CK_RV kyso_rsa_pad_pkcs1(const uint8_t *in, size_t inlen, uint8_t *out,
			 size_t k);
/* EMSA-PSS of an already computed hash mh to a block of modbits. */
CK_RV kyso_rsa_pad_pss(CK_MECHANISM_TYPE hash, CK_MECHANISM_TYPE mgf_hash,
		       size_t saltlen, const uint8_t *mh, size_t mhlen,
		       size_t modbits, uint8_t *out, size_t k);
/* Checks and strips block type 2 (CKM_RSA_PKCS decrypt) or OAEP padding from
 * a raw decryption result in constant time. Returns CKR_ENCRYPTED_DATA_INVALID
 * on any padding error without telling which, CKR_BUFFER_TOO_SMALL when
 * the message does not fit out (with *outlen the needed size). */
CK_RV kyso_rsa_unpad_pkcs1(const uint8_t *em, size_t k, uint8_t *out,
			   size_t *outlen);
CK_RV kyso_rsa_unpad_oaep(const uint8_t *em, size_t k,
			  CK_MECHANISM_TYPE hash, CK_MECHANISM_TYPE mgf_hash,
			  const uint8_t *label, size_t labellen, uint8_t *out,
			  size_t *outlen);

/* --- ECDSA ------------------------------------------------------------- */
/* X9.62 input for a curve of cbytes: the leftmost bits of the hash, or the
 * hash left-padded with zeros when shorter. out gets cbytes. */
void kyso_ecdsa_fit(const uint8_t *h, size_t hlen, size_t cbits,
		    uint8_t *out);
/* DER Ecdsa-Sig-Value ↔ r||s with each half cbytes long. */
CK_RV kyso_ecdsa_der_to_raw(const uint8_t *der, size_t len, size_t cbytes,
			    uint8_t *out);
CK_RV kyso_ecdsa_raw_to_der(const uint8_t *raw, size_t len, uint8_t *out,
			    size_t cap, size_t *outlen);

/* --- public keys and certificates ------------------------------------- */
struct kyso_pubkey {
	CK_KEY_TYPE type; /* CKK_RSA or CKK_EC (CKK_RSA is 0: use
			     kyso_pubkey_present to ask whether one is set) */
	CK_ULONG bits;	  /* modulus bits or curve bits */
	uint8_t *n, *e;	  /* RSA, big-endian, no leading zeros */
	size_t nlen, elen;
	uint8_t *params; /* EC: DER OBJECT IDENTIFIER of the named curve */
	size_t paramslen;
	uint8_t *point; /* EC: uncompressed point 04||X||Y */
	size_t pointlen;
};
/* Whether k holds a key (an RSA modulus or an EC point). */
static inline int kyso_pubkey_present(const struct kyso_pubkey *k)
{
	return (k->type == CKK_RSA && k->nlen > 0) ||
	       (k->type == CKK_EC && k->pointlen > 0);
}
void kyso_pubkey_clear(struct kyso_pubkey *k);
CK_RV kyso_pubkey_copy(struct kyso_pubkey *dst, const struct kyso_pubkey *src);
CK_RV kyso_pubkey_rsa(struct kyso_pubkey *k, const uint8_t *n, size_t nlen,
		      const uint8_t *e, size_t elen);
/* curve_bits 256 or 384; point uncompressed. */
CK_RV kyso_pubkey_ec(struct kyso_pubkey *k, CK_ULONG curve_bits,
		     const uint8_t *point, size_t pointlen);
/* Named curve bits (256, 384, 521) of DER curve OID params; 0 if unknown. */
CK_ULONG kyso_ec_params_bits(const uint8_t *params, size_t len);
/* DER SubjectPublicKeyInfo of a key (for CSRs and CKA_PUBLIC_KEY_INFO). */
CK_RV kyso_pubkey_spki(const struct kyso_pubkey *k, uint8_t **der,
		       size_t *len);

struct kyso_cert_info {
	uint8_t *subject, *issuer, *serial; /* DER Name, Name, INTEGER */
	size_t subjectlen, issuerlen, seriallen;
	int64_t not_before, not_after; /* seconds since the epoch */
	struct kyso_pubkey pub;
};
/* Parses a DER X.509 certificate. CKR_DEVICE_ERROR for anything malformed. */
CK_RV kyso_cert_parse(const uint8_t *der, size_t len,
		      struct kyso_cert_info *info);
void kyso_cert_info_clear(struct kyso_cert_info *info);
/* Inflates a gzip/zlib-compressed certificate (PIV CertInfo 01), bounded. */
CK_RV kyso_inflate(const uint8_t *in, size_t len, uint8_t **out,
		   size_t *outlen, size_t max);

/* Software verification for C_Verify: mech is any sign mechanism kyso offers;
 * params its CK_RSA_PKCS_PSS_PARAMS where needed. data is the message (or, for
 * CKM_RSA_PKCS / CKM_ECDSA / CKM_RSA_PKCS_PSS, what was signed).
 * CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE on mismatch. */
CK_RV kyso_verify(const struct kyso_pubkey *k, CK_MECHANISM_TYPE mech,
		  const void *params, size_t paramslen, const uint8_t *data,
		  size_t datalen, const uint8_t *sig, size_t siglen);

/* --- symmetric, for card protocols ------------------------------------- */
enum kyso_cipher {
	KYSO_DES3, /* two- or three-key 3DES (16 or 24 byte keys) */
	KYSO_AES,  /* 16, 24 or 32 byte keys */
};
/* ECB over whole blocks (len a multiple of the block size). */
CK_RV kyso_cipher_ecb(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		      int encrypt, const uint8_t *in, size_t len,
		      uint8_t *out);
/* CBC without padding, iv of one block (NULL = zeros). */
CK_RV kyso_cipher_cbc(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		      int encrypt, const uint8_t *iv, const uint8_t *in,
		      size_t len, uint8_t *out);
size_t kyso_cipher_block(enum kyso_cipher alg);

/* --- MACs, for card secure messaging (mac.c) ---------------------------- */
/* ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with DES: DES-CBC under the
 * first half of a 16-byte key from the chaining value iv (8 bytes, NULL =
 * zeros), the last block also decrypted under the second half and encrypted
 * again under the first. in is already padded (len a non-zero multiple of
 * 8); out gets 8 bytes. */
CK_RV kyso_mac_retail(const uint8_t key[16], const uint8_t *iv,
		      const uint8_t *in, size_t len, uint8_t out[8]);
/* CBC-MAC: the last block of CBC encryption of in (already padded) from iv
 * (one block, NULL = zeros); out gets one block. */
CK_RV kyso_mac_cbc(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		   const uint8_t *iv, const uint8_t *in, size_t len,
		   uint8_t *out);
/* AES-CMAC (RFC 4493) of in (any length, its own padding), the CBC starting
 * from the chaining value iv (16 bytes; NULL = zeros, which is RFC 4493).
 * out gets the 16-byte tag. */
CK_RV kyso_mac_cmac(const uint8_t *key, size_t keylen, const uint8_t *iv,
		    const uint8_t *in, size_t len, uint8_t out[16]);

/* --- randomness and memory --------------------------------------------- */
CK_RV kyso_random(uint8_t *p, size_t n);
/* Compares in time independent of content. 0 when equal. */
int kyso_ct_memcmp(const void *a, const void *b, size_t n);

#endif
