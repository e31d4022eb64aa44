import type { Attachment, NetConf } from "./types.js";

/**
 * The attachments a GC call says are still in use: `cni.dev/valid-attachments` plus the legacy
 * `cni.dev/attachments` (libcni sends both). Undefined when the runtime sent neither key, which is not
 * the same as an empty list.
 */
export function validAttachments(conf: NetConf): Attachment[] | undefined {
  const lists = [conf["cni.dev/valid-attachments"], conf["cni.dev/attachments"]].filter(
    (l): l is Attachment[] => Array.isArray(l),
  );
  return lists.length === 0 ? undefined : lists.flat();
}
