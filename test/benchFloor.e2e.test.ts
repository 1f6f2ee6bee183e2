/**
 * The benchmark's floor parents (bench/floorWorkflows.ts) on the real dev server and the Graph simulator:
 * the ratios of `npm run bench` are only as true as the floor they divide by. Every user is started and
 * counted once, and, like the job, a run starts nobody more once its history reaches maxHistoryEvents,
 * drains its window and continues as new.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { parentHistoryLengths } from '../bench/floor';
import { floorActivities } from '../bench/floorWorker';
import { type FloorShape } from '../bench/types';
import { floorParent, floorUserName } from '../bench/floorWorkflows';
import { GraphClient } from '../graph/client';
import { StaticTokenCredential } from '../graph/credentials';
import { openStage, testTemporalAddress } from './support/harness';

const USERS = 40;
const WINDOW = 5;
const MAX_EVENTS = 80;
/** A parent's events per user at most (start child: 3; child started and closed: 2; signal: 1; task: 3). */
const PARENT_EVENTS_PER_USER = 9;

test.each<FloorShape>(['floor-activity', 'floor-shape'])(
  '%s: every user once, each run continues as new near maxHistoryEvents',
  async (shape) => {
    // A simulator of its own per shape: what it saw is that shape's alone.
    const stage = await openStage();
    const taskQueue = `floor-${randomBytes(3).toString('hex')}`;
    const graph = new GraphClient({
      baseUrl: stage.simulator.baseUrl,
      credential: new StaticTokenCredential(stage.env.GRAPH_TOKEN as string),
    });
    const connection = await NativeConnection.connect({ address: testTemporalAddress() });
    // The floor has no codec: the SDK's default data converter, as bench/floor.ts runs it.
    const client = new Client({ connection: stage.client.connection, namespace: 'default' });
    try {
      const worker = await Worker.create({
        connection,
        taskQueue,
        workflowsPath: require.resolve('../bench/floorWorkflows'),
        activities: floorActivities(graph),
      });
      const result = await worker.runUntil(
        client.workflow.execute(floorParent, {
          workflowId: taskQueue,
          taskQueue,
          args: [{ shape, users: USERS, windowSize: WINDOW, maxHistoryEvents: MAX_EVENTS }],
        }),
      );
      expect(result).toEqual({ succeeded: USERS, failed: 0 });
      // What Graph saw: each user's reset asked for once, and nobody else's.
      for (let index = 0; index < USERS; index++) {
        expect(stage.simulator.user(floorUserName(index))?.posts).toBe(1);
      }
      expect(stage.simulator.user(floorUserName(USERS))).toBeUndefined();

      const lengths = await parentHistoryLengths(client, taskQueue);
      expect(lengths.length).toBeGreaterThan(1);
      // A run stops starting at MAX_EVENTS, then only drains its window and continues as new.
      for (const length of lengths) {
        expect(length).toBeLessThanOrEqual(MAX_EVENTS + WINDOW * PARENT_EVENTS_PER_USER);
      }
    } finally {
      await connection.close();
      await stage.close();
    }
  },
);
