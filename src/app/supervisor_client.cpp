#include "ecu2mqtt/app/supervisor_client.hpp"

#include "ecu2mqtt/net/asio.hpp"

namespace ecu2mqtt {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The body of GET <base_url><path>; throws AddonError naming what went wrong, with `hint` added
// to a refusal.
std::string supervisor_get(const std::string& base_url, const std::string& token,
                           const std::string& path, const std::string& hint,
                           std::chrono::milliseconds timeout) {
    if (!base_url.starts_with("http://"))
        throw AddonError("Supervisor URL must start with http://: " + base_url);
    std::string authority = base_url.substr(7);
    if (const auto slash = authority.find('/'); slash != std::string::npos)
        authority.resize(slash);
    std::string host = authority, port = "80";
    if (const auto colon = authority.rfind(':'); colon != std::string::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }

    asio::io_context io;
    tcp::socket socket(io);
    tcp::resolver resolver(io);
    std::string response;
    boost::system::error_code failure;
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host +
                                "\r\nAuthorization: Bearer " + token +
                                "\r\nAccept: application/json\r\n\r\n";
    std::array<char, 4096> buffer{};
    std::function<void()> read_more = [&] {
        socket.async_read_some(asio::buffer(buffer),
                               [&](boost::system::error_code ec, std::size_t n) {
                                   response.append(buffer.data(), n);
                                   if (ec) {
                                       if (ec != asio::error::eof)
                                           failure = ec;
                                       return;
                                   }
                                   read_more();
                               });
    };
    resolver.async_resolve(
        host, port, [&](boost::system::error_code ec, tcp::resolver::results_type results) {
            if (ec) {
                failure = ec;
                return;
            }
            asio::async_connect(
                socket, results, [&](boost::system::error_code ec2, const tcp::endpoint&) {
                    if (ec2) {
                        failure = ec2;
                        return;
                    }
                    asio::async_write(socket, asio::buffer(request),
                                      [&](boost::system::error_code ec3, std::size_t) {
                                          if (ec3) {
                                              failure = ec3;
                                              return;
                                          }
                                          read_more();
                                      });
                });
        });
    io.run_for(timeout);
    if (!io.stopped())
        throw AddonError("the Supervisor at " + base_url + " did not answer within " +
                         std::to_string(timeout.count()) + " ms");
    if (failure)
        throw AddonError("cannot reach the Supervisor at " + base_url + ": " + failure.message());

    const auto header_end = response.find("\r\n\r\n");
    if (header_end == std::string::npos)
        throw AddonError("malformed HTTP answer from the Supervisor");
    const auto status_line = response.substr(0, response.find("\r\n"));
    if (status_line.find(" 200") == std::string::npos)
        throw AddonError("the Supervisor answered \"" + status_line + "\" to " + path + " (" +
                         hint + ")");
    return response.substr(header_end + 4);
}

} // namespace

SupervisorMqtt fetch_supervisor_mqtt(const std::string& base_url, const std::string& token,
                                     std::chrono::milliseconds timeout) {
    return parse_supervisor_mqtt(supervisor_get(
        base_url, token, "/services/mqtt",
        "is `services: [mqtt:need]` in config.yaml and the MQTT add-on installed?", timeout));
}

std::vector<std::string> fetch_supervisor_host_addresses(const std::string& base_url,
                                                         const std::string& token,
                                                         std::chrono::milliseconds timeout) {
    return parse_supervisor_network(supervisor_get(
        base_url, token, "/network/info", "is `hassio_api: true` in config.yaml?", timeout));
}

} // namespace ecu2mqtt
