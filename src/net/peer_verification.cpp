#include "ecu2mqtt/net/peer_verification.hpp"

#include "ecu2mqtt/net/host_port.hpp"

#include <boost/asio/ssl.hpp>
#include <openssl/x509_vfy.h>

namespace ecu2mqtt {
namespace asio = boost::asio;

void verify_peer(asio::ssl::stream<asio::ip::tcp::socket>& stream, const std::string& host,
                 PeerVerification& verdict) {
    stream.set_verify_mode(asio::ssl::verify_peer);
    stream.set_verify_callback(
        [&verdict, host](bool preverified, asio::ssl::verify_context& check) {
            X509_STORE_CTX* store = check.native_handle();
            if (!preverified) {
                if (verdict.chain_error == X509_V_OK)
                    verdict.chain_error = X509_STORE_CTX_get_error(store);
                return false;
            }
            if (X509_STORE_CTX_get_error_depth(store) == 0 &&
                !asio::ssl::host_name_verification(host)(preverified, check)) {
                verdict.host_mismatch = true;
                return false;
            }
            return true;
        });
    if (!is_ip_literal(host)) // the server may serve several names
        SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
}

ChainProblem chain_problem(int chain_error) {
    switch (chain_error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return ChainProblem::unknown_ca;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return ChainProblem::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return ChainProblem::not_yet_valid;
    default:
        return ChainProblem::other;
    }
}

std::string chain_error_text(int chain_error) {
    return X509_verify_cert_error_string(chain_error);
}

} // namespace ecu2mqtt
