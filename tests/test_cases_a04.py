"""a04's hidden cases catch the behaviour the lecture asks for (D frozen in the G step, no gradient into G in the
D step, D updated once per train_step, D before G) and the new parts (cGAN label input, VAE-GAN feature loss),
and each part is scored on its own: a wrong d_loss or g_loss costs only its own part, not the steps built on
it. Every wrong notebook below is wrong in one or two unrelated parts; exactly those lose points."""

import pytest

from tests.wrong_notebooks import assert_only_part_loses, solution, with_cell_appended, with_definition

from course_utils.layout import course_root
from course_utils.grader.cases import load_suite
from course_utils.grader.check import cell_points

NAME = "a04_gan"

D_LOSS_WITHOUT_HALF = '''
def d_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
'''
G_LOSS_MINIMAX = '''
def g_loss(fake_logits):
    return -F.softplus(fake_logits).mean()
'''
D_STEP_WITHOUT_DETACH = '''
def d_step(G, D, opt_d, real, z):
    loss = d_loss(D(real), D(G(z)))
    opt_d.zero_grad()
    loss.backward()
    opt_d.step()
    return loss.item()
'''
G_STEP_WITHOUT_FREEZING = '''
def g_step(G, D, opt_g, z):
    loss = g_loss(D(G(z)))
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    return loss.item()
'''
TRAIN_STEP_D_TWICE = '''
def train_step(G, D, opt_g, opt_d, real, z):
    ld = d_step(G, D, opt_d, real, z)
    lg = g_step(G, D, opt_g, z)
    opt_d.step()
    return ld, lg
'''
TRAIN_STEP_G_FIRST = '''
def train_step(G, D, opt_g, opt_d, real, z):
    lg = g_step(G, D, opt_g, z)
    ld = d_step(G, D, opt_d, real, z)
    return ld, lg
'''
GENERATOR_LABEL_FIRST = '''
def _label_first(self, z, labels=None):
    if self.n_classes:
        z = torch.cat([F.one_hot(labels, self.n_classes).float(), z], 1)
    return self.up(self.project(z))
Generator.forward = _label_first
'''
DISCRIMINATOR_WITHOUT_PROJECTION = '''
def _no_projection(self, x, labels=None):
    return self.head(self.features(x))
Discriminator.forward = _no_projection
'''
LLIKE_WITHOUT_DETACH = '''
def llike(features, x, x_rec):
    return 0.5 * (features(x) - features(x_rec)).pow(2).sum(1).mean()
'''
LLIKE_IN_PIXELS = '''
def llike(features, x, x_rec):
    return 0.5 * (x - x_rec).pow(2).flatten(1).sum(1).mean()
'''
# wrong steps that every probe once let through (issue 18): each network arrived fresh, without stale gradients,
# and nothing looked at requires_grad after the step
D_STEP_WITHOUT_ZERO_GRAD = D_STEP_WITHOUT_DETACH.replace("loss = d_loss(D(real), D(G(z)))", """with torch.no_grad():
        fake = G(z)
    loss = d_loss(D(real), D(fake))""").replace("    opt_d.zero_grad()\n", "")
G_STEP_WITHOUT_ZERO_GRAD = G_STEP_WITHOUT_FREEZING.replace("    opt_g.zero_grad()\n", "").replace(
    "    loss = g_loss", "    D.requires_grad_(False)\n    loss = g_loss").replace("    return", "    D.requires_grad_(True)\n    return")
G_STEP_LEAVES_D_FROZEN = G_STEP_WITHOUT_FREEZING.replace("    loss = g_loss", "    D.requires_grad_(False)\n    loss = g_loss")
D_STEP_LEAVES_G_FROZEN = D_STEP_WITHOUT_DETACH.replace("    loss = d_loss", "    G.requires_grad_(False)\n    loss = d_loss")

WRONG = {  # name -> (replacement definitions or patches of the cGAN classes, parts that must lose points)
    "d_loss without 1/2; llike without detach": ([D_LOSS_WITHOUT_HALF, LLIKE_WITHOUT_DETACH], ["test_d_loss", "test_llike"]),
    "minimax g_loss; one-hot label before z": ([G_LOSS_MINIMAX, GENERATOR_LABEL_FIRST], ["test_g_loss", "test_cgan"]),
    "fakes not detached in the D step; llike in pixels": ([D_STEP_WITHOUT_DETACH, LLIKE_IN_PIXELS], ["test_d_step", "test_llike"]),
    "D not frozen in the G step; no projection term": ([G_STEP_WITHOUT_FREEZING, DISCRIMINATOR_WITHOUT_PROJECTION],
                                                       ["test_g_step", "test_cgan"]),
    "train_step updates D twice": ([TRAIN_STEP_D_TWICE], ["test_train_step"]),
    "train_step does the G step first": ([TRAIN_STEP_G_FIRST], ["test_train_step"]),
    "D step without zero_grad": ([D_STEP_WITHOUT_ZERO_GRAD], ["test_d_step"]),
    "G step without zero_grad": ([G_STEP_WITHOUT_ZERO_GRAD], ["test_g_step"]),
    "G step leaves D frozen": ([G_STEP_LEAVES_D_FROZEN], ["test_g_step"]),
    # train_step then raises in its G step (G frozen): that costs train_step too
    "D step freezes G and leaves it frozen": ([D_STEP_LEAVES_G_FROZEN], ["test_d_step", "test_train_step"]),
}


def test_every_test_cell_has_cases():
    assert sorted(load_suite(course_root() / "cases" / f"{NAME}.py").grade_ids()) == sorted(cell_points(solution(NAME)))


@pytest.mark.slow
@pytest.mark.parametrize("wrong", list(WRONG))
def test_wrong_parts_lose_their_points_and_only_those(wrong):
    sources, parts = WRONG[wrong]
    nb = solution(NAME)
    for source in sources:
        patch = "forward = " in source                  # a patch of a given class's forward, appended to its cell
        nb = with_cell_appended(nb, "q6c_code", source) if patch else with_definition(nb, source)
    assert_only_part_loses(NAME, nb, parts)
