/**
 * Failure messages and stack traces travel inside an encoded payload (and so encrypted by the codec),
 * instead of in plain text: they name users and quote Graph's answers. Loaded by path by clients and
 * workers, including inside the workflow sandbox, so it imports nothing else.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
