// Redis key names in one place.
import type { Channel } from "../validation/address";

export const STREAM_PREFIX = "message_queue:";
export const CONSUMER_GROUP = "workers";
export const DLQ_STREAM = "message_dlq";
export const COUNTERS_KEY = "queue:counters";
export const HEARTBEAT_KEY = "queue:heartbeat";

export const streamKey = (type: Channel) => `${STREAM_PREFIX}${type}`;
export const retryKey = (type: Channel) => `message_retry:${type}`;
/** A retry set member: the message id and the attempt that failed. */
export const retryMember = (messageId: string, attempt: number) => `${messageId}:${attempt}`;
