/**
 * The communication layer: frames on the wire, transports (TCP with authentication, in-process for
 * tests), the rendezvous store, and collectives on a ProcessGroup. It moves Float32Array/byte
 * buffers and knows nothing of tensors or models.
 */
export { ProcessGroup, DEFAULT_CHUNK_BYTES, DEFAULT_DIRECT_MAX_BYTES, type AllToAllOptions } from './process_group.js';
export type { AllGatherOptions, AllReduceOptions, AllReduceAlgorithm, CollectiveOptions, P2POptions, ProcessGroupOptions, ReduceScatterOptions, SplitOptions } from './process_group.js';
export type { Reducer, ReduceOp } from './collectives/reduce_ops.js';
export { plainAddInto } from './collectives/reduce_ops.js';
export type { Transport, RecvOptions, SendOptions, PieceConsumer } from './transport.js';
export type { Deadline, Waiter } from './deadline.js';
export type { Codec } from './codecs/codec.js';
export type { ConnectionOptions } from './tcp/connection.js';
export { DEFAULT_TIMEOUT_MS, bytesOf, floatsOf } from './transport.js';
export { InProcessTransport, createInProcessTransports, type InProcessOptions } from './inproc.js';
export { TcpTransport } from './tcp/transport.js';
export { MeshListener, parseAddress } from './tcp/mesh.js';
export type { MeshConfig } from './tcp/mesh.js';
export { rendezvous, ADDRESS_KEY } from './rendezvous.js';
export type { Cluster, RendezvousOptions } from './rendezvous.js';
export type { ShmNative } from './shm/native.js';
export { StoreServer } from './store/server.js';
export { RefusalError } from './tcp/handshake.js';
export type { Refusal } from './wire/control.js';
export type { StoreServerConfig, StoreLimits } from './store/server.js';
export { StoreClient } from './store/client.js';
export type { StoreClientConfig } from './store/client.js';
export { StoreTimeoutError } from './store/protocol.js';
export { resolveToken, generateToken, TOKEN_ENV, type TokenSource } from './token.js';
export { setCommLogger } from './log.js';
export type { CommLogger, LogLevel } from './log.js';
export { PROTOCOL_VERSION, HEADER_BYTES, MessageType, DEFAULT_LIMITS } from './wire/frame.js';
export type { FrameHeader, FrameLimits } from './wire/frame.js';
