import { describe, expect, it } from 'vitest';
import { RespError, type RespPipe, type RespReply } from '../../src/backends/redis/protocol/resp-pipe.js';
import { setProbe } from '../../src/backends/redis/target/keys-restore.js';

/**
 * The SET probe's verdicts, from the replies servers give (the real ones are met in the integration tests: a nil on
 * Redis 6.2, 7.0 and Valkey 8.1, NOPERM for an ACL user, "unknown command" for a renamed SET, a Cluster master's own
 * slot). Here the replies no server of the matrix gives: a Redis before 6.2 (no PXAT) and a slot that moved.
 */
function pipeAnswering(reply: RespReply): { pipe: RespPipe; sent: string[] } {
  const sent: string[] = [];
  const pipe = {
    exec: async (batch: { data: Buffer; count: number }) => {
      sent.push(batch.data.toString('latin1'));
      return [reply];
    },
  } as unknown as RespPipe;
  return { pipe, sent };
}

describe('setProbe', () => {
  it('sends SET key 1 XX PXAT now+60s (nothing is written: no one holds the key) and says yes only for a nil reply', async () => {
    const yes = pipeAnswering(null);
    expect(await setProbe(yes.pipe, 'tykdr:restore:set-probe:{abc}')).toBeNull();
    expect(yes.sent[0]).toMatch(/^\*6\r\n\$3\r\nSET\r\n\$29\r\ntykdr:restore:set-probe:\{abc\}\r\n\$1\r\n1\r\n\$2\r\nXX\r\n\$4\r\nPXAT\r\n\$13\r\n\d{13}\r\n$/);
    const at = Number(/(\d{13})\r\n$/.exec(yes.sent[0]!)![1]);
    expect(at).toBeGreaterThan(Date.now());
    expect(at).toBeLessThan(Date.now() + 120_000);
  });

  it('a Redis before 6.2 (syntax error), a moved slot, NOPERM or an unexpected reply mean no, with the answer', async () => {
    expect(await setProbe(pipeAnswering(new RespError('ERR syntax error')).pipe)).toBe('ERR syntax error');
    expect(await setProbe(pipeAnswering(new RespError('MOVED 1234 10.0.0.2:6379')).pipe)).toBe('MOVED 1234 10.0.0.2:6379');
    expect(await setProbe(pipeAnswering(new RespError('NOPERM User tyk has no permissions to run the \'set\' command\nmore')).pipe))
      .toBe("NOPERM User tyk has no permissions to run the 'set' command");
    expect(await setProbe(pipeAnswering(Buffer.from('OK')).pipe)).toBe('SET ... XX answered "OK"');
  });
});
