#!/usr/bin/env ruby
# A minimal em-websocket echo server: the differential oracle of differential_emws.py.
#
#     ruby emws_server.rb HOST PORT [--no-onerror]
#
# Text comes back as text, binary as binary (em-websocket answers pings and closes itself).
# Prints "listening" on stdout once the port is bound. onerror is defined on purpose: without
# it, a request with a repeated Sec-WebSocket-Version makes em-websocket raise NoMethodError
# into the reactor and the process dies (em-websocket.md §1.7); with it, only that one
# connection is dropped, so the rest of the differential run can continue. Errors are
# logged to stderr. --no-onerror leaves it undefined (to show that crash).
require 'em-websocket'

host = ARGV[0] || '127.0.0.1'
port = Integer(ARGV[1] || 8080)
with_onerror = !ARGV.include?('--no-onerror')
$stdout.sync = true
$stderr.sync = true

EM.run do
  trap('TERM') { EM.stop }
  trap('INT') { EM.stop }
  EM::WebSocket.run(host: host, port: port) do |ws|
    ws.onmessage { |msg| ws.send(msg) }
    ws.onbinary { |msg| ws.send_binary(msg) }
    if with_onerror
      ws.onerror { |e| $stderr.puts("emws_server: #{e.class}: #{e.message}") }
    end
  end
  puts "listening on #{host}:#{port}"
end
