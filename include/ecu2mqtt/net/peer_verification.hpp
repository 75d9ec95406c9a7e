// Checks a TLS server's certificate chain and name during the handshake, and keeps why it was
// refused, so that a failed handshake can be explained in words the user can act on.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <string>

namespace ecu2mqtt {

struct PeerVerification {
    int chain_error = 0;        // the first X509_V_ERR_* of the chain; 0 (X509_V_OK) if none
    bool host_mismatch = false; // the chain was good, the name was not
};

// Makes `stream` verify the peer against its context's CAs and `host`, sending `host` as the
// server name unless it is an IP literal. `verdict` is filled during the handshake and must
// outlive it.
void verify_peer(boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& stream,
                 const std::string& host, PeerVerification& verdict);

enum class ChainProblem { unknown_ca, expired, not_yet_valid, other };

ChainProblem chain_problem(int chain_error);
// OpenSSL's wording of the error, e.g. "certificate has expired".
std::string chain_error_text(int chain_error);

} // namespace ecu2mqtt
