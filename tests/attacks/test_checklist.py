"""The attack checklist (`keras_adv.testing.TestCase.run_attack_test`).

Every attack runs the whole checklist, both norms, both seeding paths.
"""

from keras_adv import attacks
from keras_adv.testing import TestCase


class AttackChecklistTest(TestCase):
    def test_fgsm(self):
        self.run_attack_test(attacks.FGSM)

    def test_fgsm_random_start(self):
        self.run_attack_test(attacks.FGSM, {"random_start": True})

    def test_pgd(self):
        self.run_attack_test(attacks.PGD, {"steps": 5})

    def test_bim(self):
        self.run_attack_test(attacks.BIM, {"steps": 5})

    def test_mim(self):
        self.run_attack_test(attacks.MIM, {"steps": 5})
