#pragma once
// OpenSSL contexts for the two ends of a connection, made once (listen,
// connect) and shared by its handshakes: TLS 1.2 at least, 1.3 preferred
// (OpenSSL picks the highest both speak).

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "shard/netproto/stream.h"

namespace shard::netproto {

using TlsContext = boost::asio::ssl::context;

// The accepting side: its certificate chain and private key, PEM files.
// Null with *error set ("tls_cert /x: No such file or directory ...").
std::shared_ptr<TlsContext> make_server_tls(const std::string& cert_file, const std::string& key_file,
                                            std::string* error);

// The connecting side. verify: the server's certificate must chain to a CA
// of ca_file (PEM; empty: the system's CAs) and name the host it was asked
// for (handshake.h's ClientHandshake::server_name). Without verify, any
// certificate goes (development only: no protection against a man in the middle).
std::shared_ptr<TlsContext> make_client_tls(const std::string& ca_file, bool verify, std::string* error);

// The newest OpenSSL error on this thread, as text (for the reasons logged).
std::string openssl_error_text();

}  // namespace shard::netproto
