// The direct-conversation key (docs/api.md): channel group + the unordered participant pair.
import { type Channel, channelGroup } from "../validation/address";

export function directKey(type: Channel, a: string, b: string): string {
  const [low, high] = a <= b ? [a, b] : [b, a];
  return `${channelGroup(type)}:${low}|${high}`;
}
