#!/usr/bin/python3
"""A slow network path on loopback: a TCP forwarder that holds every new connection for
DELAY_MS before it connects it to TARGET_PORT, then relays bytes both ways unchanged.
It stands for a tracker far away; nothing in the bytes is read or changed.

Usage: slow_link.py LISTEN_PORT TARGET_PORT DELAY_MS
Prints "ready" once listening.
"""
import asyncio
import sys

listen_port, target_port, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000.0


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    await asyncio.sleep(delay)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
