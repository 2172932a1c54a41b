/**
 * eip-negotiation: the offer an agent makes at time step t with the concession strategy of the
 * seed paper, O_t = ip + (rp - ip) * (t/dl)^(1/cr), computed by core's `sigma`. Psi comes from
 * the message or from the node's settings; either way core's schema checks it, and a bad one is
 * an INVALID_PSI error for Catch nodes.
 */
import { z } from 'zod';
import { EipError } from '../../core/errors.js';
import { concessionShape, type Psi, parsePsi, sigma } from '../../core/negotiation/strategy.js';
import { blank, decimal } from './config.js';
import { defineNode, type NodeDef } from './red.js';
import { failing, working } from './status.js';

const PSI_KEYS = ['ip', 'rp', 'dl', 'cr'] as const;
/** A psi field of the edit dialog: empty, or a number typed as text. */
const psiField = z.union([blank, decimal]).optional();

/** msg.payload: the time step alone, or the step with the psi to use for it. */
const inputSchema = z.union([
  z.number(),
  z.looseObject({ t: z.number({ error: 't must be a number (the time step)' }) }),
]);

/**
 * The node's psi: none when its four fields are empty; otherwise what core's parsePsi makes of
 * them, which for a missing or bad field is an INVALID_PSI error naming it (with what was typed).
 */
function configuredPsi(def: NodeDef): Psi | EipError | undefined {
  const fields = PSI_KEYS.flatMap((key) => {
    const field = psiField.safeParse(def[key]);
    if (field.success && field.data === undefined) return [];
    return [[key, field.success ? field.data : def[key]] as const];
  });
  if (fields.length === 0) return undefined;
  try {
    return parsePsi(Object.fromEntries(fields), 'node settings');
  } catch (error) {
    return error as EipError;
  }
}

export default defineNode('eip-negotiation', (_RED, node, def) => {
  const configured = configuredPsi(def);
  if (configured instanceof EipError) {
    node.status(failing(configured));
    node.error(configured);
  }

  node.on('input', (msg, send, done) => {
    try {
      const input = inputSchema.safeParse(msg.payload);
      if (!input.success) {
        throw new EipError(
          'INVALID_ARGUMENT',
          'msg.payload must be the time step t, or an object {t, ip, rp, dl, cr}',
        );
      }
      const { t, ...given } = typeof input.data === 'number' ? { t: input.data } : input.data;
      const psi = Object.keys(given).length > 0 ? parsePsi(given, 'msg.payload') : configured;
      if (psi instanceof EipError) throw psi;
      if (psi === undefined) {
        throw new EipError(
          'INVALID_PSI',
          'no psi: set ip, rp, dl and cr in the node or send them in msg.payload',
        );
      }
      const offer = sigma(psi, t);
      node.status(working(`t=${t}: ${offer}`));
      send({ ...msg, payload: offer, t, psi: { ...psi }, shape: concessionShape(psi) });
      done();
    } catch (error) {
      node.status(failing(error));
      done(error as Error);
    }
  });
});
